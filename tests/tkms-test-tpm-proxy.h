/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * TkmsTestTpmProxy: a recording TCP forwarder between tkmsd and swtpm, so that a test sees
 * every byte that crosses the TPM bus (tests/test-tpm-bus.c).
 *
 * It listens on 127.0.0.1, on a free even port P for TPM commands and P + 1 for swtpm's
 * control channel (the pair the swtpm TCTI expects), and forwards each connection to the
 * swtpm's port and port + 1. Every byte of the command channel is appended, both ways, to a
 * file of records: direction u8 ('>' towards the TPM, '<' from it), length u32 big-endian,
 * the bytes. A record is written before its bytes are passed on, so once tkmsd has answered a
 * call, everything it exchanged with the TPM for it is in the file. The control channel is
 * forwarded without recording: it carries no TPM commands. One thread of its own does the
 * work; it stops with tkms_test_tpm_proxy_free().
 */

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _TkmsTestTpmProxy TkmsTestTpmProxy;

/* Forwards to 127.0.0.1:tpm_port (and tpm_port + 1); records into record_path (created or
 * truncated). */
TkmsTestTpmProxy *tkms_test_tpm_proxy_new(guint16 tpm_port, const gchar *record_path,
					  GError **error);
void tkms_test_tpm_proxy_free(TkmsTestTpmProxy *proxy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsTestTpmProxy, tkms_test_tpm_proxy_free)

/* "swtpm:host=127.0.0.1,port=P": the TCTI that reaches the TPM through the proxy. */
const gchar *tkms_test_tpm_proxy_get_tcti(TkmsTestTpmProxy *proxy);
/* Connections forwarded so far (command and control). */
guint tkms_test_tpm_proxy_get_connections(TkmsTestTpmProxy *proxy);

/* The part of an answer that tkms_test_tpm_proxy_tamper_next() alters. An answer is
 * tag | size | response code | handles | [parameterSize] | parameters | [authorization area:
 * per session nonce (TPM2B), attributes (u8), HMAC (TPM2B)]; the proxy knows which commands
 * answer with a handle (TPM2_Load, TPM2_StartAuthSession, ...). */
typedef enum {
	TKMS_TEST_TPM_TAMPER_PARAMETERS, /* byte offset of the parameters */
	TKMS_TEST_TPM_TAMPER_NONCE,	 /* byte offset of the first session's nonceTPM */
	TKMS_TEST_TPM_TAMPER_ATTRIBUTES, /* the first session's attributes (offset 0) */
	TKMS_TEST_TPM_TAMPER_HMAC,	 /* byte offset of the first session's HMAC */
	/* the authorization area and parameterSize removed, tag TPM_ST_NO_SESSIONS, size
	 * adjusted: the answer as a TPM would give it to a command without sessions (offset and
	 * mask unused) */
	TKMS_TEST_TPM_TAMPER_STRIP_SESSIONS,
} TkmsTestTpmTamperPart;

/* Arms one alteration: the next successful answer (response code 0) to a command with
 * command_code gets the byte at offset of part XORed with xor_mask (non-zero). One rule at a
 * time: a new one replaces one not yet used. The rule is used up by that answer; if the answer
 * has no such byte (no sessions, offset past the end) it passes unaltered and only
 * tkms_test_tpm_proxy_get_tamper_misses() counts it. */
void tkms_test_tpm_proxy_tamper_next(TkmsTestTpmProxy *proxy, guint32 command_code,
				     TkmsTestTpmTamperPart part, gsize offset, guint8 xor_mask);
/* Answers altered so far, and armed rules whose answer could not be altered. */
guint tkms_test_tpm_proxy_get_tampered(TkmsTestTpmProxy *proxy);
guint tkms_test_tpm_proxy_get_tamper_misses(TkmsTestTpmProxy *proxy);
/* Whether a rule is still armed (no answer to its command has come yet). */
gboolean tkms_test_tpm_proxy_tamper_pending(TkmsTestTpmProxy *proxy);

/* Arms forged error answers: the next n (at most 4) answers to commands with command_code,
 * whatever the TPM said, are replaced by answers with response_codes in turn (tag
 * TPM_ST_NO_SESSIONS, size 10: the TPM refused the command). Independent of the
 * tkms_test_tpm_proxy_tamper_next() rule; a new call replaces what is left of an earlier one.
 * The TPM did run the command: only its answer is forged (and recorded as forged). */
void tkms_test_tpm_proxy_forge_errors(TkmsTestTpmProxy *proxy, guint32 command_code,
				      const guint32 *response_codes, guint n);
/* Answers forged so far. */
guint tkms_test_tpm_proxy_get_forged(TkmsTestTpmProxy *proxy);

/* The recording at path: each direction's bytes in order, concatenated. FALSE if the file
 * cannot be read or a record is cut short. */
gboolean tkms_test_tpm_proxy_read(const gchar *path, GBytes **to_tpm, GBytes **from_tpm,
				  GError **error);

/* Where the recording stood when a step began: the bytes sent to the TPM (len[0]) and from it
 * (len[1]). */
typedef struct {
	gsize len[2];
} TkmsTestTpmMark;

/* A command sent to the TPM, with what its answer says. The session fields read the
 * authorization area after one handle, as in the commands tkmsd sends in a session (TPM2_Sign,
 * TPM2_Unseal, TPM2_HMAC, ...). */
typedef struct {
	guint32 code;
	/* its first handle (FlushContext: what it flushes; StartAuthSession: tpmKey), or 0 */
	guint32 handle;
	guint32 session;   /* its first authorization session's handle, or 0 */
	guint8 attributes; /* that session's attributes, or 0 */
	guint32 rc;	   /* the answer's response code, G_MAXUINT32 if none was recorded */
	guint32 out;	   /* the answer's first handle (a loaded object's), or 0 */
} TkmsTestTpmCommand;

/* The recording at path as it stands now; asserts that it can be read. */
TkmsTestTpmMark tkms_test_tpm_proxy_mark(const gchar *path);
/* The commands recorded at path since mark, in order (TkmsTestTpmCommand). Asserts that the
 * whole recording to the TPM is whole commands back to back. Answers are paired with commands
 * in order from the mark on, not from the start: a TPM restarted before it answered leaves a
 * command without an answer, which would shift every later pair. */
GArray *tkms_test_tpm_proxy_commands_since(const gchar *path, const TkmsTestTpmMark *mark);
/* How many of them have code. */
guint tkms_test_tpm_proxy_count_since(const gchar *path, const TkmsTestTpmMark *mark, guint32 code);

G_END_DECLS
