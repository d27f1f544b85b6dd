/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Small helpers shared by the integration tests (part of the tkms-test-env library). */

#include <gio/gio.h>

#include "tkms-client.h"
#include "tkms-test-env.h"
#include "tkms-test-tpm-proxy.h"

G_BEGIN_DECLS

/* Deterministic pseudo-random bytes (xorshift, seeded). */
GBytes *tkms_test_bytes_pattern(gsize len, guint32 seed);
/* Random bytes (g_random_int()): a secret a test hands tkmsd and then looks for. */
GBytes *tkms_test_bytes_random(gsize len);
/* The bytes of s without the terminating NUL. */
GBytes *tkms_test_bytes_str(const gchar *s);
/* A copy of b with bit number bit (0 = LSB of byte 0) inverted. */
GBytes *tkms_test_bytes_flip_bit(GBytes *b, gsize bit);
/* A copy of b with byte number offset XORed with mask. */
GBytes *tkms_test_bytes_xor_byte(GBytes *b, gsize offset, guint8 mask);
/* A copy of the first len bytes. */
GBytes *tkms_test_bytes_truncate(GBytes *b, gsize len);
gboolean tkms_test_bytes_contain(GBytes *haystack, const void *needle, gsize needle_len);
gchar *tkms_test_bytes_to_hex(GBytes *b);
/* The big-endian 32-bit number at p (TPM commands and answers). */
guint32 tkms_test_be32(const guint8 *p);

/* A key name unique in this process: "<prefix>-<n>". */
gchar *tkms_test_key_name(const gchar *prefix);

/* CreateKey that must succeed; returns the info dictionary. options may be NULL or floating. */
GVariant *tkms_test_create_key(TkmsClient *client, const gchar *name, const gchar *type,
			       GVariant *options);
/* Hmac that must succeed; returns the MAC. */
GBytes *tkms_test_hmac(TkmsClient *client, const gchar *name, GBytes *data);
/* Sign that must succeed with a signature that Verify accepts; returns the signature (NULL
 * after a failed non-fatal assertion). */
GBytes *tkms_test_sign_verified(TkmsClient *client, const gchar *name, GBytes *data);

/* Writes b to dir/file_name with mode 0644 and returns the path. */
gchar *tkms_test_write_file(const gchar *dir, const gchar *file_name, GBytes *b);

/* Number of complete lines in a file (0 if it does not exist). */
guint tkms_test_count_lines(const gchar *path);

/* Short name of a TKMS_ERROR ("NotFound", ...) or "domain:code" of any other error. */
gchar *tkms_test_error_name(const GError *error);

/* Returns NULL if error is a TKMS_ERROR with one of the codes (list ends with -1), else a
 * message describing what was found instead. */
gchar *tkms_test_error_one_of_message(const GError *error, ...);

/* A new connection to the env's bus and a client on it: a fresh unique bus name, so the
 * daemon has no cached authorization for it. */
TkmsClient *tkms_test_new_client(TkmsTestEnv *env);

/* Reads a property of the daemon directly (org.freedesktop.DBus.Properties.Get). */
GVariant *tkms_test_get_property(TkmsTestEnv *env, const gchar *property);

/* Iterates the default main context for up to ms milliseconds. */
void tkms_test_spin(guint ms);

/* A random even TCP port for a test server (the next one free too, as a rule). It lies below
 * Linux's ephemeral range (32768-60999): a client that keeps reconnecting to a port in that
 * range while nothing listens (tkmsd or tpm2-abrmd while swtpm is down) can connect to itself
 * by TCP simultaneous open and then holds the port, so the server cannot come back on it. */
guint16 tkms_test_random_server_port(void);

/* Asserts that error is a TKMS_ERROR whose code is one of the arguments. */
#define tkms_assert_error_one_of(error, ...)                                                 \
	G_STMT_START                                                                         \
	{                                                                                    \
		gchar *tkms_msg_ = tkms_test_error_one_of_message((error), __VA_ARGS__, -1); \
		if (tkms_msg_ != NULL)                                                       \
			g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC,     \
					    tkms_msg_);                                      \
	}                                                                                    \
	G_STMT_END

/* g_assert_error() with the name of the error that came instead. */
#define tkms_assert_error(error, code) tkms_assert_error_one_of((error), (code))

#define tkms_assert_bytes_equal(a, b)                                                        \
	G_STMT_START                                                                         \
	{                                                                                    \
		GBytes *tkms_a_ = (a), *tkms_b_ = (b);                                       \
		g_assert_nonnull(tkms_a_);                                                   \
		g_assert_nonnull(tkms_b_);                                                   \
		g_assert_cmpmem(g_bytes_get_data(tkms_a_, NULL), g_bytes_get_size(tkms_a_),  \
				g_bytes_get_data(tkms_b_, NULL), g_bytes_get_size(tkms_b_)); \
	}                                                                                    \
	G_STMT_END

/* An env with config (may be NULL) whose tkmsd reaches the TPM through a new recording proxy
 * (tpm.rec in the env's directory, its path in *record_path), tkmsd started; with
 * TKMS_TEST_TPM_VIA=abrmd, tpm2-abrmd reaches the swtpm through it. The test exits if a part
 * cannot start. Stop tkmsd before freeing the proxy: it holds the proxy's connection. */
TkmsTestEnv *tkms_test_env_new_behind_tpm_proxy(const gchar *config, TkmsTestTpmProxy **proxy,
						gchar **record_path);

G_END_DECLS
