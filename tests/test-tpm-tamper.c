/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-tpm-tamper"

/*
 * An attacker on the TPM bus cannot make tkmsd accept a forged or altered answer in its own
 * SYS session (daemon/tpm-sys-session.c): a hot ecdsa key's Sign, the Unseal of an aes-256-gcm
 * key's material at its first use, and Hmac of a small message. tkmsd reaches swtpm through
 * the recording proxy (tests/tkms-test-tpm-proxy.h), which alters one answer per case: a bit
 * of its parameters (the signature, the encrypted unsealed data, the encrypted MAC), of the
 * TPM's nonce, of the session attributes or of the HMAC, or it removes the session from the
 * answer altogether. Each time the call fails with IntegrityFailure (never a success with
 * altered data, nor a silent retry that would hide the attack from the log and the audit
 * trail), the session it ran in is flushed and a new salted one started, and the next call,
 * unaltered, succeeds with the right answer. An error answer carries no HMAC and can be
 * forged outright: answers to Sign forged as errors that blame the session, more often than
 * the TPM has session slots, each fail the call, every session that got one is flushed, and
 * the TPM holds no session tkmsd forgot (sign/forged-session-errors); error answers forged to
 * the StartAuthSession of a new SYS session, whose handle tkmsd then never learns, fill the
 * TPM's slots only until tkmsd connects again, and normal calls keep succeeding
 * (sign/forged-start-errors). Nothing secret reaches tkmsd's log.
 */

#include <openssl/evp.h>
#include <string.h>

#include "tkms-test-tpm-proxy.h"
#include "tkms-test-util.h"

static TkmsTestEnv *env;
static TkmsTestTpmProxy *proxy;
static gchar *record_path;
#define CLIENT (tkms_test_env_get_client(env))

#define TPM_CC_CREATE_PRIMARY	  0x131
#define TPM_CC_HMAC		  0x155
#define TPM_CC_SIGN		  0x15d
#define TPM_CC_UNSEAL		  0x15e
#define TPM_CC_FLUSH_CONTEXT	  0x165
#define TPM_CC_START_AUTH_SESSION 0x176
#define TPM_RH_NULL		  0x40000007
#define TPM_HT_HMAC_SESSION	  0x02
/* warnings a TPM gives about a command's first session: it is not loaded; its handle is wrong
 * (TPM_RC_SESSION_HANDLE + TPM_RC_S + TPM_RC_1) */
#define TPM_RC_REFERENCE_S0	 0x918
#define TPM_RC_SESSION_HANDLE_S1 0x98b
/* TPM_RC_VALUE + TPM_RC_P + TPM_RC_1: a parameter refused */
#define TPM_RC_VALUE_P1 0x1c4
/* more than swtpm's loaded sessions (3) */
#define FORGED_CALLS 10

#define CT_HEADER_LEN 12 /* ciphertext format 1 (docs/dbus-api.md) */
#define IV_LEN	      12

/* The keys of the cases: a hot ecdsa key, an hmac key and the MAC it gives for hmac_msg. */
static gchar *ec_name;
static gchar *hmac_name;
static GBytes *sign_msg;
static GBytes *hmac_msg;
static GBytes *hmac_ref;
/* What the log must not hold: the Hmac message and MAC, the Encrypt plaintexts; and
 * (plaintext, ciphertext) pairs, whose AES key is looked for in the log too. */
static GPtrArray *secrets;     /* GBytes */
static GPtrArray *aes_samples; /* GBytes: ciphertext (format 1) of AES_SAMPLE_PT */

typedef enum {
	OP_SIGN,
	OP_UNSEAL,
	OP_HMAC,
} Op;

static const guint32 op_codes[] = {TPM_CC_SIGN, TPM_CC_UNSEAL, TPM_CC_HMAC};

/* ---- the calls ---- */

static GBytes *
sign_verified(void)
{
	return tkms_test_sign_verified(CLIENT, ec_name, sign_msg);
}

static GBytes *
hmac_ok(void)
{
	return tkms_test_hmac(CLIENT, hmac_name, hmac_msg);
}

/* Encrypt with a fresh aes-256-gcm key (its material unsealed at this first use), then
 * Decrypt: the plaintext comes back. */
static void
encrypt_decrypt_ok(const gchar *name)
{
	g_autoptr(GBytes) pt = tkms_test_bytes_random(32);
	g_autoptr(GBytes) context = tkms_test_bytes_str("tamper");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) ct = tkms_client_encrypt_sync(CLIENT, name, pt, context, NULL, &error);
	g_autoptr(GBytes) back = NULL;

	g_assert_no_error(error);
	if (ct == NULL)
		return;
	back = tkms_client_decrypt_sync(CLIENT, name, ct, context, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(back, pt);
	g_ptr_array_add(secrets, g_bytes_ref(pt));
	g_ptr_array_add(aes_samples, g_bytes_ref(pt));
	g_ptr_array_add(aes_samples, g_bytes_ref(ct));
}

/* The call of op with its answer altered: it must fail. A success fails the test, saying whether
 * what it gave is right (a retry with an unaltered answer) or not (altered data accepted). */
static void
call_tampered(Op op, const gchar *aes_name, GError **error)
{
	switch (op) {
	case OP_SIGN: {
		g_autoptr(GBytes) sig =
			tkms_client_sign_sync(CLIENT, ec_name, sign_msg, NULL, error);
		gboolean valid = FALSE;
		if (sig == NULL)
			return;
		g_assert_true(tkms_client_verify_sync(CLIENT, ec_name, sign_msg, sig, &valid, NULL,
						      NULL));
		g_test_fail_printf(
			"Sign succeeded although its answer was altered; the signature %s",
			valid ? "verifies" : "does not verify");
		return;
	}
	case OP_UNSEAL: {
		g_autoptr(GBytes) pt = tkms_test_bytes_random(32);
		g_autoptr(GBytes) context = tkms_test_bytes_str("tamper");
		g_autoptr(GBytes) ct =
			tkms_client_encrypt_sync(CLIENT, aes_name, pt, context, NULL, error);
		if (ct == NULL)
			return;
		g_test_fail_printf("%s", "Encrypt at a key's first use succeeded although its "
					 "Unseal answer was altered");
		return;
	}
	case OP_HMAC: {
		g_autoptr(GBytes) mac =
			tkms_client_hmac_sync(CLIENT, hmac_name, hmac_msg, NULL, error);
		if (mac == NULL)
			return;
		g_test_fail_printf("Hmac succeeded although its answer was altered; the MAC is %s",
				   g_bytes_equal(mac, hmac_ref) ? "right" : "WRONG");
		return;
	}
	}
}

typedef struct {
	Op op;
	TkmsTestTpmTamperPart part;
	gsize offset;
	guint8 mask;
	const gchar *what;
} Case;

/* The parameters: a byte of the signature's r (sigAlg, hash, r's size first), of the unsealed
 * data and of the MAC (after their size); the nonce's, the HMAC's bytes; continueSession. */
static const Case cases[] = {
	{OP_SIGN, TKMS_TEST_TPM_TAMPER_PARAMETERS, 10, 0x01, "sign/parameters"},
	{OP_SIGN, TKMS_TEST_TPM_TAMPER_NONCE, 3, 0x01, "sign/nonce"},
	{OP_SIGN, TKMS_TEST_TPM_TAMPER_HMAC, 31, 0x80, "sign/hmac"},
	{OP_SIGN, TKMS_TEST_TPM_TAMPER_ATTRIBUTES, 0, 0x01, "sign/attributes"},
	{OP_SIGN, TKMS_TEST_TPM_TAMPER_STRIP_SESSIONS, 0, 0, "sign/no-session"},
	{OP_UNSEAL, TKMS_TEST_TPM_TAMPER_PARAMETERS, 7, 0x10, "unseal/parameters"},
	{OP_UNSEAL, TKMS_TEST_TPM_TAMPER_NONCE, 0, 0x80, "unseal/nonce"},
	{OP_UNSEAL, TKMS_TEST_TPM_TAMPER_HMAC, 0, 0x01, "unseal/hmac"},
	{OP_UNSEAL, TKMS_TEST_TPM_TAMPER_ATTRIBUTES, 0, 0x40, "unseal/attributes"},
	{OP_UNSEAL, TKMS_TEST_TPM_TAMPER_STRIP_SESSIONS, 0, 0, "unseal/no-session"},
	{OP_HMAC, TKMS_TEST_TPM_TAMPER_PARAMETERS, 2, 0x04, "hmac/parameters"},
	{OP_HMAC, TKMS_TEST_TPM_TAMPER_NONCE, 31, 0x02, "hmac/nonce"},
	{OP_HMAC, TKMS_TEST_TPM_TAMPER_HMAC, 16, 0x20, "hmac/hmac"},
	{OP_HMAC, TKMS_TEST_TPM_TAMPER_ATTRIBUTES, 0, 0x01, "hmac/attributes"},
	{OP_HMAC, TKMS_TEST_TPM_TAMPER_STRIP_SESSIONS, 0, 0, "hmac/no-session"},
};

/* The index of the first command with code at or after from, or -1. */
static gint
find_command(GArray *commands, guint from, guint32 code)
{
	for (guint i = from; i < commands->len; i++)
		if (g_array_index(commands, TkmsTestTpmCommand, i).code == code)
			return (gint)i;
	return -1;
}

static void
test_case(gconstpointer data)
{
	const Case *c = data;
	guint32 code = op_codes[c->op];
	g_autofree gchar *aes_name = NULL;
	g_autoptr(GVariant) aes_info = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) commands = NULL;
	guint tampered = tkms_test_tpm_proxy_get_tampered(proxy);
	guint misses = tkms_test_tpm_proxy_get_tamper_misses(proxy);
	guint32 session;
	gint bad, flush = -1, start = -1, next;
	TkmsTestTpmMark mark;

	/* the key hot and the session open before the altered answer */
	if (c->op == OP_UNSEAL) {
		aes_name = tkms_test_key_name("tamper-aes");
		aes_info = tkms_test_create_key(CLIENT, aes_name, "aes-256-gcm", NULL);
	}
	if (c->op == OP_HMAC) {
		g_autoptr(GBytes) mac = hmac_ok();
		tkms_assert_bytes_equal(mac, hmac_ref);
	} else {
		g_autoptr(GBytes) sig = sign_verified();
	}

	mark = tkms_test_tpm_proxy_mark(record_path);
	tkms_test_tpm_proxy_tamper_next(proxy, code, c->part, c->offset, c->mask);
	call_tampered(c->op, aes_name, &error);
	/* the answer was altered, and nothing else */
	g_assert_false(tkms_test_tpm_proxy_tamper_pending(proxy));
	g_assert_cmpuint(tkms_test_tpm_proxy_get_tampered(proxy), ==, tampered + 1);
	g_assert_cmpuint(tkms_test_tpm_proxy_get_tamper_misses(proxy), ==, misses);
	if (error != NULL) {
		g_autofree gchar *error_name = tkms_test_error_name(error);
		g_test_message("%s: %s: %s", c->what, error_name, error->message);
		/* the TPM's answer is refused, not the caller's request */
		tkms_assert_error(error, TKMS_ERROR_INTEGRITY_FAILURE);
	}

	/* the next call, unaltered, gives the right answer */
	switch (c->op) {
	case OP_SIGN: {
		g_autoptr(GBytes) sig = sign_verified();
		break;
	}
	case OP_UNSEAL:
		encrypt_decrypt_ok(aes_name);
		break;
	case OP_HMAC: {
		g_autoptr(GBytes) mac = hmac_ok();
		tkms_assert_bytes_equal(mac, hmac_ref);
		break;
	}
	}

	/* the altered command ran in an HMAC session; that session was flushed, and the next
	 * command of the kind runs in a new salted one */
	commands = tkms_test_tpm_proxy_commands_since(record_path, &mark);
	bad = find_command(commands, 0, code);
	g_assert_cmpint(bad, >=, 0);
	if (bad < 0)
		return;
	session = g_array_index(commands, TkmsTestTpmCommand, bad).session;
	g_assert_cmphex(session >> 24, ==, TPM_HT_HMAC_SESSION);
	for (guint i = (guint)bad + 1; i < commands->len; i++) {
		TkmsTestTpmCommand *cmd = &g_array_index(commands, TkmsTestTpmCommand, i);
		if (cmd->code == TPM_CC_FLUSH_CONTEXT && cmd->handle == session && flush < 0)
			flush = (gint)i;
		if (cmd->code == TPM_CC_START_AUTH_SESSION && cmd->handle != TPM_RH_NULL &&
		    flush >= 0 && start < 0)
			start = (gint)i;
	}
	g_assert_cmpint(flush, >, bad);
	g_assert_cmpint(start, >, flush);
	/* sent once: not retried */
	g_assert_cmpint(find_command(commands, (guint)bad + 1, code), >, start);
	if (start < 0)
		return;
	next = find_command(commands, (guint)start + 1, code);
	g_assert_cmpint(next, >, start);
	if (next < 0)
		return;
	g_assert_cmphex(g_array_index(commands, TkmsTestTpmCommand, next).session >> 24, ==,
			TPM_HT_HMAC_SESSION);
	g_test_message("%s: the session 0x%08x flushed, a new salted one started", c->what,
		       session);
}

/* The sessions the TPM holds after every command recorded: those started (answer success)
 * and not flushed since. Nothing else talks to this swtpm, and tkmsd keeps continueSession:
 * no session ends otherwise. The answers are the ones tkmsd got (forged ones too): only answers
 * to Sign are forged here, which start or end no session. */
static GHashTable *
held_sessions(void)
{
	TkmsTestTpmMark start = {{0, 0}};
	g_autoptr(GArray) commands = tkms_test_tpm_proxy_commands_since(record_path, &start);
	GHashTable *held = g_hash_table_new(NULL, NULL);

	for (guint i = 0; i < commands->len; i++) {
		TkmsTestTpmCommand *cmd = &g_array_index(commands, TkmsTestTpmCommand, i);
		if (cmd->rc != 0) /* an error, or no answer (G_MAXUINT32) */
			continue;
		if (cmd->code == TPM_CC_START_AUTH_SESSION)
			g_hash_table_add(held, GUINT_TO_POINTER(cmd->out));
		if (cmd->code == TPM_CC_FLUSH_CONTEXT)
			g_hash_table_remove(held, GUINT_TO_POINTER(cmd->handle));
	}
	return held;
}

/*
 * An attacker on the TPM bus answers the SYS session's Sign with errors that blame the
 * session: TPM_RC_REFERENCE_S0 ("no such session"), then, to the retry on a reloaded object,
 * TPM_RC_SESSION_HANDLE. An error answer carries no session HMAC: nothing proves it came from
 * the TPM, nor that the session is gone, and here the TPM still holds it. FORGED_CALLS times,
 * more than swtpm has slots for loaded sessions: each call fails (never a success, right or
 * wrong), every session that got a forged answer is flushed, and afterwards a normal Sign
 * succeeds and the TPM holds no session tkmsd forgot, nor did tkmsd need to connect again to
 * flush them (were they left, the TPM would refuse new sessions, TPM_RC_SESSION_MEMORY, every
 * few calls, until a new connection flushed them).
 */
static void
test_forged_session_errors(void)
{
	static const guint32 rcs[] = {TPM_RC_REFERENCE_S0, TPM_RC_SESSION_HANDLE_S1};
	g_autoptr(GBytes) sig = sign_verified();
	g_autoptr(GArray) commands = NULL;
	g_autoptr(GHashTable) held = NULL;
	guint forged = tkms_test_tpm_proxy_get_forged(proxy);
	guint flushed = 0, checked = 0, connects = 0;
	guint32 last = 0;
	TkmsTestTpmMark mark = tkms_test_tpm_proxy_mark(record_path);
	GHashTableIter iter;
	gpointer handle;

	for (guint i = 0; i < FORGED_CALLS; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *error_name = NULL;
		/* the key's object cached again (a failure drops it): the forged answer then
		 * blames the session, not a stale object, and tkmsd retries once on the object
		 * reloaded, without a new connection (which would flush whatever the TPM holds) */
		g_autoptr(GBytes) good = sign_verified();

		tkms_test_tpm_proxy_forge_errors(proxy, TPM_CC_SIGN, rcs, G_N_ELEMENTS(rcs));
		call_tampered(OP_SIGN, NULL, &error);
		g_assert_nonnull(error);
		if (error != NULL) {
			error_name = tkms_test_error_name(error);
			g_test_message("forged call %u: %s: %s", i + 1, error_name, error->message);
		}
		/* both answers were forged: the Sign and its retry */
		g_assert_cmpuint(tkms_test_tpm_proxy_get_forged(proxy), ==,
				 forged + (i + 1) * G_N_ELEMENTS(rcs));
	}
	tkms_test_tpm_proxy_forge_errors(proxy, TPM_CC_SIGN, NULL, 0);
	g_clear_pointer(&sig, g_bytes_unref);
	sig = sign_verified();

	/* every session that got a forged answer was flushed after it */
	commands = tkms_test_tpm_proxy_commands_since(record_path, &mark);
	for (guint i = 0; i < commands->len; i++) {
		TkmsTestTpmCommand *cmd = &g_array_index(commands, TkmsTestTpmCommand, i);
		gboolean found = FALSE;
		if (cmd->code == TPM_CC_SIGN && cmd->rc == 0)
			last = cmd->session;
		if (cmd->code == TPM_CC_CREATE_PRIMARY)
			connects++;
		if (cmd->code != TPM_CC_SIGN ||
		    (cmd->rc != TPM_RC_REFERENCE_S0 && cmd->rc != TPM_RC_SESSION_HANDLE_S1))
			continue;
		checked++;
		g_assert_cmphex(cmd->session >> 24, ==, TPM_HT_HMAC_SESSION);
		/* before its handle is given to a new session */
		for (guint j = i + 1; j < commands->len && !found; j++) {
			TkmsTestTpmCommand *later = &g_array_index(commands, TkmsTestTpmCommand, j);
			if (later->code == TPM_CC_START_AUTH_SESSION && later->rc == 0 &&
			    later->out == cmd->session)
				break;
			found = later->code == TPM_CC_FLUSH_CONTEXT &&
				later->handle == cmd->session;
		}
		if (found)
			flushed++;
		else
			g_test_fail_printf("the session 0x%08x got a forged %s answer to Sign and "
					   "was never flushed",
					   cmd->session,
					   cmd->rc == TPM_RC_REFERENCE_S0
						   ? "TPM_RC_REFERENCE_S0"
						   : "TPM_RC_SESSION_HANDLE");
	}
	g_assert_cmpuint(checked, ==, FORGED_CALLS * G_N_ELEMENTS(rcs));
	/* nor did a new connection flush them: the TPM's slots never filled up (a connection
	 * starts with the storage root key's CreatePrimary) */
	g_assert_cmpuint(connects, ==, 0);
	g_test_message("%u sessions got a forged error answer, %u of them flushed", checked,
		       flushed);

	/* the TPM holds the session of the last Sign and at most ESYS's shared one */
	held = held_sessions();
	g_assert_cmphex(last >> 24, ==, TPM_HT_HMAC_SESSION);
	g_assert_true(g_hash_table_contains(held, GUINT_TO_POINTER(last)));
	g_hash_table_iter_init(&iter, held);
	while (g_hash_table_iter_next(&iter, &handle, NULL))
		g_test_message("the TPM holds the session 0x%08x", GPOINTER_TO_UINT(handle));
	g_assert_cmpuint(g_hash_table_size(held), <=, 2);
}

/*
 * The attacker forges an error answer to the StartAuthSession that starts the SYS session
 * again: the TPM started it, and tkmsd never learns its handle, so it cannot flush it.
 * FORGED_CALLS times (after a Sign whose forged answers end the session before): those calls
 * fail, and every normal Sign between and after them succeeds, the TPM's slots full of
 * sessions nobody knows or not (TPM_RC_SESSION_MEMORY makes tkmsd connect again, which flushes
 * what the TPM holds).
 */
static void
test_forged_start_errors(void)
{
	static const guint32 sign_rcs[] = {TPM_RC_SESSION_HANDLE_S1, TPM_RC_SESSION_HANDLE_S1};
	static const guint32 start_rcs[] = {TPM_RC_VALUE_P1};
	TkmsTestTpmMark mark = tkms_test_tpm_proxy_mark(record_path);
	g_autoptr(GBytes) sig = NULL;
	guint connects;

	for (guint i = 0; i < FORGED_CALLS; i++) {
		g_autoptr(GError) sign_error = NULL;
		g_autoptr(GError) start_error = NULL;
		g_autoptr(GBytes) good = sign_verified();
		guint forged = tkms_test_tpm_proxy_get_forged(proxy);

		/* the SYS session ends: the next Sign starts another */
		tkms_test_tpm_proxy_forge_errors(proxy, TPM_CC_SIGN, sign_rcs,
						 G_N_ELEMENTS(sign_rcs));
		call_tampered(OP_SIGN, NULL, &sign_error);
		g_assert_nonnull(sign_error);
		tkms_test_tpm_proxy_forge_errors(proxy, TPM_CC_START_AUTH_SESSION, start_rcs,
						 G_N_ELEMENTS(start_rcs));
		call_tampered(OP_SIGN, NULL, &start_error);
		g_assert_nonnull(start_error);
		if (start_error != NULL) {
			g_autofree gchar *error_name = tkms_test_error_name(start_error);
			g_test_message("forged start %u: %s: %s", i + 1, error_name,
				       start_error->message);
		}
		g_assert_cmpuint(tkms_test_tpm_proxy_get_forged(proxy), ==,
				 forged + G_N_ELEMENTS(sign_rcs) + G_N_ELEMENTS(start_rcs));
	}
	tkms_test_tpm_proxy_forge_errors(proxy, TPM_CC_START_AUTH_SESSION, NULL, 0);
	sig = sign_verified();
	/* the TPM's slots did fill up, and tkmsd connected again: each connection starts with
	 * the storage root key's CreatePrimary */
	connects = tkms_test_tpm_proxy_count_since(record_path, &mark, TPM_CC_CREATE_PRIMARY);
	g_assert_cmpuint(connects, >, 0);
	g_test_message("tkmsd connected to the TPM %u times again", connects);
}

/* The tests are not vacuous: without alteration Sign's signature verifies, Hmac gives the
 * same MAC twice, a fresh key encrypts and decrypts; all in one kept session. */
static void
test_control(void)
{
	g_autofree gchar *aes = tkms_test_key_name("tamper-aes");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	g_autoptr(GBytes) sig = sign_verified();
	g_autoptr(GBytes) mac = hmac_ok();
	g_autoptr(GArray) commands = NULL;
	guint32 session = 0;
	TkmsTestTpmMark mark = tkms_test_tpm_proxy_mark(record_path);

	tkms_assert_bytes_equal(mac, hmac_ref);
	encrypt_decrypt_ok(aes);
	g_clear_pointer(&sig, g_bytes_unref);
	sig = sign_verified();
	commands = tkms_test_tpm_proxy_commands_since(record_path, &mark);
	for (guint i = 0; i < commands->len; i++) {
		TkmsTestTpmCommand *cmd = &g_array_index(commands, TkmsTestTpmCommand, i);
		if (cmd->code != TPM_CC_SIGN && cmd->code != TPM_CC_UNSEAL)
			continue;
		g_assert_cmphex(cmd->session >> 24, ==, TPM_HT_HMAC_SESSION);
		if (session == 0)
			session = cmd->session;
		g_assert_cmphex(cmd->session, ==, session);
	}
	g_assert_cmphex(session, !=, 0);
	g_assert_cmpint(find_command(commands, 0, TPM_CC_UNSEAL), >=, 0);
	g_assert_cmpuint(tkms_test_tpm_proxy_get_tampered(proxy), ==, 0);
}

/* ---- the log ---- */

static gboolean
log_has(const gchar *log, gsize log_len, GBytes *secret)
{
	g_autofree gchar *hex = tkms_test_bytes_to_hex(secret);
	g_autofree gchar *b64 =
		g_base64_encode(g_bytes_get_data(secret, NULL), g_bytes_get_size(secret));
	g_autofree gchar *upper = g_ascii_strup(hex, -1);

	return memmem(log, log_len, g_bytes_get_data(secret, NULL), g_bytes_get_size(secret)) !=
		       NULL ||
	       strstr(log, hex) != NULL || strstr(log, upper) != NULL ||
	       /* without its padding: it may have been cut */
	       memmem(log, log_len, b64, strlen(b64) - 2) != NULL;
}

/* Whether key (32 bytes) made ct (format 1) of pt: AES-256-GCM's first block is pt XOR
 * AES_key(IV | 00000002). */
static gboolean
is_aes_key(EVP_CIPHER_CTX *ctx, const guint8 *key, GBytes *pt, GBytes *ct)
{
	const guint8 *c = g_bytes_get_data(ct, NULL), *p = g_bytes_get_data(pt, NULL);
	guint8 block[16] = {0}, out[32];
	int n = 0;

	memcpy(block, c + CT_HEADER_LEN, IV_LEN);
	block[15] = 2;
	g_assert_true(EVP_EncryptInit_ex(ctx, NULL, NULL, key, NULL) == 1);
	g_assert_true(EVP_EncryptUpdate(ctx, out, &n, block, 16) == 1);
	for (guint i = 0; i < 16; i++)
		if ((out[i] ^ p[i]) != c[CT_HEADER_LEN + IV_LEN + i])
			return FALSE;
	return TRUE;
}

/* The 32-byte keys the log could hold: every 32-byte window of it, raw, and of every run of
 * hexadecimal digits, decoded. */
static GPtrArray *
log_key_candidates(const gchar *log, gsize len)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

	for (gsize i = 0; i + 32 <= len; i++)
		g_ptr_array_add(out, g_bytes_new(log + i, 32));
	for (gsize i = 0; i < len;) {
		gsize run = 0;
		while (i + run < len && g_ascii_isxdigit(log[i + run]))
			run++;
		for (gsize j = 0; run >= 64 && j + 64 <= run; j++) {
			guint8 key[32];
			for (guint k = 0; k < 32; k++)
				key[k] = (guint8)(g_ascii_xdigit_value(log[i + j + 2 * k]) << 4 |
						  g_ascii_xdigit_value(log[i + j + 2 * k + 1]));
			g_ptr_array_add(out, g_bytes_new(key, 32));
		}
		i += run + 1;
	}
	return out;
}

static void
test_log_clean(void)
{
	g_autofree gchar *log = tkms_test_env_get_daemon_log(env);
	gsize len = strlen(log);
	g_autoptr(GPtrArray) keys = log_key_candidates(log, len);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	g_test_message("tkmsd's log: %" G_GSIZE_FORMAT " bytes", len);
	g_assert_cmpuint(secrets->len, >=, 3);
	for (guint i = 0; i < secrets->len; i++)
		if (log_has(log, len, g_ptr_array_index(secrets, i)))
			g_test_fail_printf("secret %u is in tkmsd's log", i);
	g_assert_true(EVP_EncryptInit_ex(ctx, EVP_aes_256_ecb(), NULL, NULL, NULL) == 1);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	g_assert_cmpuint(aes_samples->len, >=, 2);
	for (guint s = 0; s + 1 < aes_samples->len; s += 2)
		for (guint k = 0; k < keys->len; k++)
			if (is_aes_key(ctx, g_bytes_get_data(g_ptr_array_index(keys, k), NULL),
				       g_ptr_array_index(aes_samples, s),
				       g_ptr_array_index(aes_samples, s + 1)))
				g_test_fail_printf("an aes-256-gcm key's material is in tkmsd's "
						   "log");
	EVP_CIPHER_CTX_free(ctx);
	g_test_message("no Hmac message or MAC, plaintext or AES key of %u samples in the log",
		       aes_samples->len / 2);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) ec_info = NULL;
	g_autoptr(GVariant) hmac_info = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	/* every case reports what it found, not only the first */
	g_test_set_nonfatal_assertions();
	env = tkms_test_env_new_behind_tpm_proxy(NULL, &proxy, &record_path);
	secrets = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	aes_samples = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

	ec_name = tkms_test_key_name("tamper-ec");
	hmac_name = tkms_test_key_name("tamper-hmac");
	ec_info = tkms_test_create_key(CLIENT, ec_name, "ecdsa-p256", NULL);
	hmac_info = tkms_test_create_key(CLIENT, hmac_name, "hmac-sha256", NULL);
	sign_msg = tkms_test_bytes_str("sign me, whatever the bus says");
	hmac_msg = tkms_test_bytes_random(64);
	hmac_ref = tkms_client_hmac_sync(CLIENT, hmac_name, hmac_msg, NULL, &error);
	if (hmac_ref == NULL)
		tkms_test_exit_on_error("Hmac", error);
	g_ptr_array_add(secrets, g_bytes_ref(hmac_msg));
	g_ptr_array_add(secrets, g_bytes_ref(hmac_ref));

	/* one level deeper each, so that they run in this order */
	g_test_add_func("/tpm-tamper/control/untampered", test_control);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *path = g_strdup_printf("/tpm-tamper/%s", cases[i].what);
		g_test_add_data_func(path, &cases[i], test_case);
	}
	g_test_add_func("/tpm-tamper/sign/forged-session-errors", test_forged_session_errors);
	g_test_add_func("/tpm-tamper/sign/forged-start-errors", test_forged_start_errors);
	g_test_add_func("/tpm-tamper/log/clean", test_log_clean);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	g_ptr_array_unref(secrets);
	g_ptr_array_unref(aes_samples);
	g_bytes_unref(sign_msg);
	g_bytes_unref(hmac_msg);
	g_bytes_unref(hmac_ref);
	g_free(ec_name);
	g_free(hmac_name);
	/* tkmsd first: it holds the proxy's connection */
	tkms_test_env_free(env);
	tkms_test_tpm_proxy_free(proxy);
	g_free(record_path);
	return ret;
}
