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

/* The recording at path: each direction's bytes in order, concatenated. FALSE if the file
 * cannot be read or a record is cut short. */
gboolean tkms_test_tpm_proxy_read(const gchar *path, GBytes **to_tpm, GBytes **from_tpm,
				  GError **error);

G_END_DECLS
