/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* Password keys (issue 8): generating a password from the TPM's RNG, sealing it, ImportSecret
 * and GetSecret. A version's TPM object is sealed as an aes-256-gcm version's is: 32 bytes from
 * the TPM's RNG, bound to owner, name and version (and the key's PCRs). The password is
 * AES-256-GCM under those 32 bytes, kept with the object (TkmsTpmBlob.wrapped): a TPM sealed
 * object holds at most 128 bytes, and a password may have 4096. The 32 bytes go through the
 * key cache as an AES key's do, so GetSecret needs the TPM only when they are not cached.
 * Every buffer that holds a password is wiped before it is freed. */

#include <openssl/crypto.h>
#include <string.h>

#include "crypto.h"
#include "engine-private.h"

#define LENGTH_MIN 8
#define LENGTH_MAX 256
#define LENGTH_DEFAULT 32
#define CHARSET_DEFAULT TKMS_CHARSET_ALNUM_SYMBOLS

/* wrapped: magic, format, IV, ciphertext, tag; the AAD is the header, owner, version, name */
#define WRAP_MAGIC "TKPW"
#define WRAP_FORMAT 1
#define WRAP_HEADER_LEN 5
#define WRAP_OVERHEAD (WRAP_HEADER_LEN + TKMS_GCM_IV_LEN + TKMS_GCM_TAG_LEN)

G_STATIC_ASSERT(sizeof(((TkmsPasswordSpec *)NULL)->exclude) == 128);

/* ---- buffers that are wiped ---- */

typedef struct {
	gsize len;
	guint8 data[];
} Wiped;

static Wiped *
wiped_new(gsize len)
{
	Wiped *w = g_malloc(sizeof(Wiped) + MAX(len, 1));
	w->len = len;
	return w;
}

static void
wiped_free(gpointer p)
{
	Wiped *w = p;
	if (w == NULL)
		return;
	OPENSSL_cleanse(w->data, w->len);
	g_free(w);
}

/* Bytes that share w's buffer and wipe it when their last reference goes. */
static GBytes *
wiped_to_bytes(Wiped *w)
{
	return g_bytes_new_with_free_func(w->data, w->len, wiped_free, w);
}

/* ---- the spec ---- */

/* The characters of spec, in a fixed order, less the excluded; returns how many. */
static guint
spec_alphabet(const TkmsPasswordSpec *spec, gchar out[128])
{
	static const gchar letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	static const gchar digits[] = "0123456789";
	static const gchar punctuation[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
	const gchar *parts[3] = {NULL, NULL, NULL};
	guint n = 0;

	switch (spec->charset) {
	case TKMS_CHARSET_ALNUM:
		parts[0] = letters;
		parts[1] = digits;
		break;
	case TKMS_CHARSET_ALNUM_SYMBOLS:
		parts[0] = letters;
		parts[1] = digits;
		parts[2] = punctuation;
		break;
	case TKMS_CHARSET_HEX:
		parts[0] = "0123456789abcdef";
		break;
	case TKMS_CHARSET_BASE64URL:
		parts[0] = letters;
		parts[1] = digits;
		parts[2] = "-_";
		break;
	}
	for (guint i = 0; i < G_N_ELEMENTS(parts) && parts[i] != NULL; i++)
		for (const gchar *c = parts[i]; *c != '\0'; c++)
			if (strchr(spec->exclude, *c) == NULL)
				out[n++] = *c;
	return n;
}

gboolean
tkms_engine_password_spec(const TkmsKeyOptions *options, TkmsPasswordSpec *spec, GError **error)
{
	gchar alphabet[128];
	guint n;

	memset(spec, 0, sizeof(*spec));
	spec->length = options->has_length ? options->length : LENGTH_DEFAULT;
	spec->charset = CHARSET_DEFAULT;
	if (spec->length < LENGTH_MIN || spec->length > LENGTH_MAX) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "A password has %d to %d characters; pass a length in that range",
			    LENGTH_MIN, LENGTH_MAX);
		return FALSE;
	}
	if (options->charset != NULL &&
	    !tkms_charset_from_string(options->charset, &spec->charset)) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Unknown charset; use alnum, alnum-symbols, hex or base64url");
		return FALSE;
	}
	if (options->exclude != NULL) {
		if (strlen(options->exclude) >= sizeof(spec->exclude)) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "The exclude option has at most %u characters; list each "
				    "character once",
				    (guint)sizeof(spec->exclude) - 1);
			return FALSE;
		}
		for (const gchar *c = options->exclude; *c != '\0'; c++) {
			if (*c < 0x20 || *c > 0x7e) {
				g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
						    "The exclude option holds only printable ASCII "
						    "characters; remove the others");
				return FALSE;
			}
		}
		g_strlcpy(spec->exclude, options->exclude, sizeof(spec->exclude));
	}
	n = spec_alphabet(spec, alphabet);
	if (n < 2) {
		g_set_error(
			error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			"The exclude option leaves %u character%s of charset %s, and a password "
			"needs at least 2; exclude fewer characters",
			n, n == 1 ? "" : "s", tkms_charset_to_string(spec->charset));
		return FALSE;
	}
	return TRUE;
}

/* ---- wrapping ---- */

static GBytes *
wrap_aad(const guint8 *header, const TkmsTpmKeyId *id)
{
	GByteArray *aad = g_byte_array_new();
	guint32 be;

	g_byte_array_append(aad, header, WRAP_HEADER_LEN);
	be = GUINT32_TO_BE(id->owner);
	g_byte_array_append(aad, (const guint8 *)&be, 4);
	be = GUINT32_TO_BE(id->version);
	g_byte_array_append(aad, (const guint8 *)&be, 4);
	/* last, so that its length needs no field */
	g_byte_array_append(aad, (const guint8 *)id->name, strlen(id->name));
	return g_byte_array_free_to_bytes(aad);
}

static GBytes *
wrap(TkmsSecret *key, const TkmsTpmKeyId *id, const guint8 *password, gsize len)
{
	gsize total = WRAP_OVERHEAD + len;
	guint8 *out = g_malloc(total);
	guint8 *iv = out + WRAP_HEADER_LEN;
	guint8 *body = iv + TKMS_GCM_IV_LEN;
	g_autoptr(GBytes) aad = NULL;

	memcpy(out, WRAP_MAGIC, 4);
	out[4] = WRAP_FORMAT;
	aad = wrap_aad(out, id);
	if (!tkms_crypto_random(iv, TKMS_GCM_IV_LEN) ||
	    !tkms_crypto_gcm_encrypt(key, iv, g_bytes_get_data(aad, NULL), g_bytes_get_size(aad),
				     password, len, body, body + len)) {
		g_free(out);
		return NULL;
	}
	return g_bytes_new_take(out, total);
}

/* The password in wrapped, or NULL if it does not authenticate under key for id. */
static Wiped *
unwrap(TkmsSecret *key, const TkmsTpmKeyId *id, GBytes *wrapped)
{
	gsize total = 0;
	const guint8 *in = wrapped != NULL ? g_bytes_get_data(wrapped, &total) : NULL;
	g_autoptr(GBytes) aad = NULL;
	const guint8 *iv, *body;
	Wiped *out;
	gsize len;

	if (total <= WRAP_OVERHEAD || memcmp(in, WRAP_MAGIC, 4) != 0 || in[4] != WRAP_FORMAT)
		return NULL;
	len = total - WRAP_OVERHEAD;
	iv = in + WRAP_HEADER_LEN;
	body = iv + TKMS_GCM_IV_LEN;
	aad = wrap_aad(in, id);
	out = wiped_new(len);
	if (!tkms_crypto_gcm_decrypt(key, iv, g_bytes_get_data(aad, NULL), g_bytes_get_size(aad),
				     body, len, body + len, out->data)) {
		wiped_free(out);
		return NULL;
	}
	return out;
}

/* ---- generating and sealing ---- */

typedef struct {
	TkmsEngine *engine;
	guint32 uid;
	TkmsTpmKeyId id;
	TkmsPcrMask pcrs;
	TkmsPasswordSpec spec;
	Wiped *password; /* spec.length characters, have of them drawn so far */
	gsize have;
	TkmsTpmRandom random;
	TkmsTpmCreate create;
	TkmsTpmBlob out;
} SealJob;

static void
seal_job_free(gpointer data)
{
	SealJob *job = data;

	wiped_free(job->password);
	g_clear_pointer(&job->random.out, g_bytes_unref);
	tkms_tpm_blob_clear(&job->create.out);
	g_clear_pointer(&job->create.material, tkms_secret_unref);
	tkms_tpm_blob_clear(&job->out);
	g_free(job);
}

static GTask *
seal_task_new(TkmsEngine *self, guint32 uid, TkmsKey *key, guint32 version,
	      GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);
	SealJob *job = g_new0(SealJob, 1);

	g_task_set_source_tag(task, tkms_engine_password_seal);
	job->engine = self;
	job->uid = uid;
	tkms_tpm_key_id_set(&job->id, key->owner, key->name, version);
	job->pcrs = key->pcrs;
	job->spec = key->password;
	g_task_set_task_data(task, job, seal_job_free);
	return task;
}

static void
sealed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	SealJob *job = g_task_get_task_data(task);
	GError *error = NULL;

	if (!tkms_tpm_finish(TKMS_TPM(source), res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	job->out = job->create.out;
	memset(&job->create.out, 0, sizeof(job->create.out));
	job->out.wrapped =
		wrap(job->create.material, &job->id, job->password->data, job->password->len);
	g_clear_pointer(&job->create.material, tkms_secret_unref);
	if (job->out.wrapped == NULL) {
		g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED,
					"Sealing the password failed; see the daemon log");
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/* The TPM seals 32 bytes of its RNG, as for an aes-256-gcm version; the password is wrapped
 * under them. */
static void
seal_start(GTask *task)
{
	SealJob *job = g_task_get_task_data(task);

	job->create.kind = TKMS_TPM_OBJECT_SEALED;
	job->create.pcrs = job->pcrs;
	job->create.seal_size = TKMS_AES_KEY_LEN;
	job->create.want_material = TRUE;
	job->create.bind = TRUE;
	job->create.key_id = job->id;
	/* not cancellable: a version the TPM made is saved even if its caller has gone */
	tkms_tpm_create(job->engine->tpm, job->uid, &job->create, NULL, sealed_cb,
			g_object_ref(task));
}

void
tkms_engine_password_seal(TkmsEngine *self, guint32 uid, TkmsKey *key, guint32 version,
			  const guint8 *password, gsize len, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task =
		seal_task_new(self, uid, key, version, cancellable, callback, user_data);
	SealJob *job = g_task_get_task_data(task);

	g_return_if_fail(len > 0 && len <= TKMS_SECRET_MAX);
	job->password = wiped_new(len);
	memcpy(job->password->data, password, len);
	seal_start(task);
}

/* What the TPM gives for n characters: enough in one request nearly always (at least half
 * of the bytes are kept for any alphabet of 2 to 94 characters). */
static gsize
random_request_len(gsize n)
{
	return 2 * n + 16;
}

static void generated_random_cb(GObject *source, GAsyncResult *res, gpointer user_data);

static void
draw_random(GTask *task)
{
	SealJob *job = g_task_get_task_data(task);

	job->random.length = random_request_len(job->password->len - job->have);
	tkms_tpm_random(job->engine->tpm, job->uid, &job->random, g_task_get_cancellable(task),
			generated_random_cb, g_object_ref(task));
}

static void
generated_random_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	SealJob *job = g_task_get_task_data(task);
	GError *error = NULL;
	gchar alphabet[128];
	guint n = spec_alphabet(&job->spec, alphabet);
	/* the largest multiple of n that fits a byte: a byte from there up would make the
	 * first 256 % n characters likelier, so it is rejected */
	guint limit = 256 - 256 % n;
	guint8 *bytes;
	gsize len = 0;

	if (!tkms_tpm_finish(TKMS_TPM(source), res, &error)) {
		g_task_return_error(task, error);
		return;
	}
	/* the only reference: the buffer is ours to wipe */
	bytes = g_bytes_unref_to_data(g_steal_pointer(&job->random.out), &len);
	for (gsize i = 0; i < len && job->have < job->password->len; i++)
		if (bytes[i] < limit)
			job->password->data[job->have++] = alphabet[bytes[i] % n];
	OPENSSL_cleanse(bytes, len);
	g_free(bytes);
	OPENSSL_cleanse(alphabet, sizeof(alphabet));
	if (job->have < job->password->len)
		draw_random(task);
	else
		seal_start(task);
}

void
tkms_engine_password_generate(TkmsEngine *self, guint32 uid, TkmsKey *key, guint32 version,
			      GCancellable *cancellable, GAsyncReadyCallback callback,
			      gpointer user_data)
{
	g_autoptr(GTask) task =
		seal_task_new(self, uid, key, version, cancellable, callback, user_data);
	SealJob *job = g_task_get_task_data(task);

	g_return_if_fail(key->type == TKMS_KEY_TYPE_PASSWORD);
	g_return_if_fail(key->password.length >= LENGTH_MIN && key->password.length <= LENGTH_MAX);
	job->password = wiped_new(key->password.length);
	draw_random(task);
}

gboolean
tkms_engine_password_seal_finish(TkmsEngine *self, GAsyncResult *result, TkmsTpmBlob *blob,
				 GError **error)
{
	SealJob *job;

	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	if (!g_task_propagate_boolean(G_TASK(result), error))
		return FALSE;
	job = g_task_get_task_data(G_TASK(result));
	*blob = job->out;
	memset(&job->out, 0, sizeof(job->out));
	return TRUE;
}

/* ---- ImportSecret ---- */

typedef struct {
	GBytes *secret;
	TkmsTpmBlob blob;
} ImportData;

static void
import_data_free(gpointer data)
{
	ImportData *d = data;
	g_bytes_unref(d->secret);
	tkms_tpm_blob_clear(&d->blob);
	g_free(d);
}

static gboolean
check_secret(GBytes *secret, GError **error)
{
	gsize len = 0;
	const gchar *p = g_bytes_get_data(secret, &len);

	if (len == 0 || len > TKMS_SECRET_MAX) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "A password has 1 to %d bytes; pass one of that size", TKMS_SECRET_MAX);
		return FALSE;
	}
	/* not the value in the message: it is a secret */
	if (memchr(p, '\0', len) != NULL || !g_utf8_validate_len(p, len, NULL)) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "A password is UTF-8 text without NUL bytes; encode it so");
		return FALSE;
	}
	return TRUE;
}

/* Whether a rotation or the key's state leaves room for a new current version. */
static gboolean
check_new_version(TkmsKey *key, const gchar *operation, GError **error)
{
	TkmsKeyVersion *p = tkms_key_get_version(key, key->primary_version);

	if (key->type != TKMS_KEY_TYPE_PASSWORD) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "Key \"%s\" is a %s key; %s takes password keys only", key->name,
			    tkms_key_type_to_string(key->type), operation);
		return FALSE;
	}
	if (key->rotation.step != TKMS_ROTATION_STEP_NONE) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_BUSY,
			    "A rotation of key \"%s\" is under way, waiting on its %s step; retry "
			    "when it has ended (see GetKeyInfo's rotation)",
			    key->name, tkms_rotation_step_to_string(key->rotation.step));
		return FALSE;
	}
	if (p != NULL && (g_str_equal(p->state, TKMS_STATE_DESTROY_SCHEDULED) ||
			  g_str_equal(p->state, TKMS_STATE_DESTROYED))) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE,
			    "Version %u of key \"%s\" is %s: the key is being destroyed; cancel "
			    "its destruction first",
			    p->version, key->name, p->state);
		return FALSE;
	}
	return TRUE;
}

static gboolean
import_change(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	ImportData *d = tkms_engine_op_change_data(op);
	guint32 old = key->primary_version;
	TkmsKeyVersion *v;
	guint32 deactivated;

	v = tkms_key_add_pending_version(key, &d->blob, now);
	deactivated = tkms_key_password_promote(key, v->version, now);
	op->version = v->version;
	if (deactivated != 0)
		op->detail = g_strdup_printf("current %u -> %u, previous %u, version %u "
					     "deactivated",
					     old, v->version, old, deactivated);
	else
		op->detail = g_strdup_printf("current %u -> %u, previous %u", old, v->version, old);
	return TRUE;
}

static void
import_sealed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	ImportData *d = tkms_engine_op_change_data(op);
	GError *error = NULL;

	if (!tkms_engine_password_seal_finish(TKMS_ENGINE(source), res, &d->blob, &error)) {
		tkms_engine_op_change_fail(op, error);
		return;
	}
	tkms_engine_op_change_apply(op);
}

static void
import_start(TkmsEngineOp *op)
{
	ImportData *d = tkms_engine_op_change_data(op);
	TkmsKey *key = tkms_engine_op_change_copy(op);
	GError *error = NULL;
	gsize len = 0;
	const guint8 *secret = g_bytes_get_data(d->secret, &len);

	if (!check_new_version(key, op->name, &error)) {
		tkms_engine_op_change_fail(op, error);
		return;
	}
	tkms_engine_password_seal(op->engine, op->actor.uid, key, key->versions->len + 1, secret,
				  len, NULL, import_sealed_cb, op);
}

void
tkms_engine_import_secret(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			  GBytes *secret, GCancellable *cancellable, GAsyncReadyCallback callback,
			  gpointer user_data)
{
	TkmsEngineOp *op = tkms_engine_op_new(self, "ImportSecret", actor, key, cancellable,
					      callback, user_data);
	GError *error = NULL;
	ImportData *d;

	if (!check_secret(secret, &error)) {
		tkms_engine_op_fail(op, error);
		return;
	}
	d = g_new0(ImportData, 1);
	d->secret = g_bytes_ref(secret);
	tkms_engine_op_begin_change(op, import_change, import_start, d, import_data_free);
}

/* ---- GetSecret ---- */

static void
reveal(TkmsEngineOp *op, TkmsSecret *material)
{
	TkmsKeyVersion *v = tkms_key_get_version(op->k, op->version);
	g_autoptr(GBytes) bytes = NULL;
	TkmsTpmKeyId id;
	Wiped *password;

	tkms_tpm_key_id_set(&id, op->k->owner, op->k->name, op->version);
	password = unwrap(material, &id, v->blob.wrapped);
	if (password == NULL) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE,
						    "The stored password of version %u of key "
						    "\"%s\" does not authenticate: the key store "
						    "was changed; restore it from a backup",
						    op->version, op->k->name));
		return;
	}
	bytes = wiped_to_bytes(password);
	tkms_engine_op_return_bytes(op, bytes);
}

static void
reveal_compromised(TkmsEngineOp *op, GArray *versions)
{
	TkmsKeyVersion *v = tkms_key_get_version(op->k, op->version);

	if (versions == NULL) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_KEY_STATE,
						    "Version %u of key \"%s\" is compromised and "
						    "is revealed only to an administrator "
						    "(org.tkms.KeyManager.admin)",
						    v->version, op->k->name));
		return;
	}
	g_array_unref(versions);
	tkms_engine_op_note_compromised(op, v->version);
	op->warning = "compromised key version revealed";
	tkms_engine_op_with_key_material(op, op->k, v, reveal);
}

static const gchar *const stages[] = {"current", "pending", "previous", NULL};

void
tkms_engine_get_secret(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
		       const gchar *stage, GCancellable *cancellable, GAsyncReadyCallback callback,
		       gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, "GetSecret", actor, ref, cancellable, callback, user_data);
	TkmsKeyVersion *v;
	TkmsKey *key;

	if (*stage == '\0')
		stage = "current";
	if (!g_strv_contains(stages, stage)) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INVALID_ARGUMENT,
					    "Unknown stage; use current (or empty), pending or "
					    "previous");
		return;
	}
	op->detail = g_strdup_printf("stage %s", stage);
	if ((key = tkms_engine_op_lookup_key(op)) == NULL)
		return;
	if (key->type != TKMS_KEY_TYPE_PASSWORD) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
						    "Key \"%s\" is a %s key; GetSecret reads "
						    "password keys only",
						    key->name, tkms_key_type_to_string(key->type)));
		return;
	}
	v = tkms_key_version_at_stage(key, stage);
	if (v == NULL) {
		tkms_engine_op_fail(
			op, g_error_new(TKMS_ERROR, TKMS_ERROR_NOT_FOUND,
					"Key \"%s\" has no %s version%s", key->name, stage,
					g_str_equal(stage, "pending")
						? " (there is one only while a rotation runs)"
					: g_str_equal(stage, "previous")
						? " (there is one once the key was rotated or a "
						  "secret imported, until it is destroyed)"
						: " (it is destroyed)"));
		return;
	}
	op->version = v->version;
	/* active and deactivated versions are revealed as they process data; a pending one
	 * is pre-active until its rotation's switch, and revealed for its set and test */
	if (g_str_equal(v->state, TKMS_STATE_ACTIVE) ||
	    g_str_equal(v->state, TKMS_STATE_DEACTIVATED) ||
	    (g_str_equal(v->state, TKMS_STATE_PRE_ACTIVE) && g_str_equal(stage, "pending"))) {
		tkms_engine_op_with_key_material(op, key, v, reveal);
		return;
	}
	if (g_str_equal(v->state, TKMS_STATE_COMPROMISED)) {
		GArray *versions = g_array_new(FALSE, FALSE, sizeof(guint32));
		g_array_append_val(versions, v->version);
		if (op->actor.admin) {
			reveal_compromised(op, versions);
			return;
		}
		op->compromised = versions;
		if (!tkms_engine_op_ask_compromised(op, reveal_compromised))
			reveal_compromised(op, NULL);
		return;
	}
	tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_KEY_STATE,
					    "Version %u of key \"%s\", its %s password, is %s and "
					    "cannot be revealed%s",
					    v->version, key->name, stage, v->state,
					    g_str_equal(v->state, TKMS_STATE_SUSPENDED)
						    ? " until it is resumed"
					    : g_str_equal(v->state, TKMS_STATE_DESTROY_SCHEDULED)
						    ? " until its destruction is cancelled"
						    : ""));
}
