/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-bench-echo"

/*
 * tkms-bench-echo BUS_ADDRESS [TCTI]: the baseline of tkms-bench's echo and peer rows. A
 * minimal GDBus service in a process of its own on the bench's private bus: it owns
 * org.tkms.BenchEcho and serves org.tkms.BenchEcho.Echo(ay) -> ay, which returns its argument,
 * from its main loop as tkmsd serves its methods. It is what a D-Bus method of another process
 * costs at the least; tkmsd's Encrypt does the same round trip plus its own work.
 *
 * With TCTI it also signs: Sign(ay digest) -> ay runs TPM2_Sign (ESYS, password, an ECC P-256
 * primary loaded once) in the method's handler, on the main loop; SignInThread(ay digest) -> ay
 * runs it in a thread of its own that also sends the answer, as a service must that does not
 * stop serving while the TPM works. No authorization, no audit, no key store: what a Sign
 * through D-Bus costs at the least. Runs until SIGTERM or SIGINT, or until the bus goes away.
 */

#include <gio/gio.h>
#include <glib-unix.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "tkms-bench-template.h"

#define ECHO_NAME "org.tkms.BenchEcho"
#define ECHO_PATH "/org/tkms/BenchEcho"

static const gchar introspection_xml[] = "<node>"
					 "  <interface name='org.tkms.BenchEcho'>"
					 "    <method name='Echo'>"
					 "      <arg name='data' direction='in' type='ay'/>"
					 "      <arg name='data' direction='out' type='ay'/>"
					 "    </method>"
					 "    <method name='Sign'>"
					 "      <arg name='digest' direction='in' type='ay'/>"
					 "      <arg name='signature' direction='out' type='ay'/>"
					 "    </method>"
					 "    <method name='SignInThread'>"
					 "      <arg name='digest' direction='in' type='ay'/>"
					 "      <arg name='signature' direction='out' type='ay'/>"
					 "    </method>"
					 "  </interface>"
					 "</node>";

typedef struct {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR key;
	GMutex lock;	    /* one ESYS call at a time */
	GAsyncQueue *queue; /* GDBusMethodInvocation for the TPM thread */
	GThread *thread;
} Signer;

static Signer signer = {.key = ESYS_TR_NONE};

/* TPM2_Sign of the digest; the answer is the signature's r || s, sent from this thread. */
static void
sign_and_return(GDBusMethodInvocation *invocation)
{
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
	TPMT_TK_HASHCHECK check = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
	TPMT_SIGNATURE *sig = NULL;
	TPM2B_DIGEST digest = {0};
	g_autoptr(GVariant) arg = NULL;
	g_autoptr(GByteArray) out = g_byte_array_new();
	gsize len = 0;
	const guint8 *d;
	TSS2_RC rc;

	g_variant_get(g_dbus_method_invocation_get_parameters(invocation), "(@ay)", &arg);
	d = g_variant_get_fixed_array(arg, &len, 1);
	if (signer.esys == NULL || len != 32) {
		g_dbus_method_invocation_return_dbus_error(invocation, ECHO_NAME ".Error.Invalid",
							   "no TPM, or not a SHA-256 digest");
		return;
	}
	digest.size = 32;
	memcpy(digest.buffer, d, 32);
	g_mutex_lock(&signer.lock);
	rc = Esys_Sign(signer.esys, signer.key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		       &digest, &scheme, &check, &sig);
	g_mutex_unlock(&signer.lock);
	if (rc != TSS2_RC_SUCCESS) {
		g_dbus_method_invocation_return_dbus_error(invocation, ECHO_NAME ".Error.Tpm",
							   "Esys_Sign failed");
		return;
	}
	g_byte_array_append(out, sig->signature.ecdsa.signatureR.buffer,
			    sig->signature.ecdsa.signatureR.size);
	g_byte_array_append(out, sig->signature.ecdsa.signatureS.buffer,
			    sig->signature.ecdsa.signatureS.size);
	Esys_Free(sig);
	g_dbus_method_invocation_return_value(
		invocation,
		g_variant_new("(@ay)", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, out->data,
								 out->len, 1)));
}

static gpointer
sign_thread(gpointer data)
{
	GDBusMethodInvocation *invocation;

	/* the queue's end: the invocation of the quitting main loop, never a caller's */
	while ((invocation = g_async_queue_pop(signer.queue)) != data)
		sign_and_return(invocation);
	return NULL;
}

static gboolean
signer_start(const gchar *tcti, GError **error)
{
	TPM2B_PUBLIC tmpl;
	TPM2B_SENSITIVE_CREATE sensitive = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};

	if (Tss2_TctiLdr_Initialize(tcti, &signer.tcti) != TSS2_RC_SUCCESS ||
	    Esys_Initialize(&signer.esys, signer.tcti, NULL) != TSS2_RC_SUCCESS) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot open the TPM at %s",
			    tcti);
		return FALSE;
	}
	tkms_bench_ecc_sign_template(&tmpl);
	if (Esys_CreatePrimary(signer.esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			       ESYS_TR_NONE, &sensitive, &tmpl, &outside, &pcrs, &signer.key, NULL,
			       NULL, NULL, NULL) != TSS2_RC_SUCCESS) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "Esys_CreatePrimary failed");
		return FALSE;
	}
	signer.queue = g_async_queue_new();
	signer.thread = g_thread_new("bench-tpm", sign_thread, &signer);
	return TRUE;
}

static void
signer_stop(void)
{
	if (signer.thread != NULL) {
		g_async_queue_push(signer.queue, &signer);
		g_thread_join(signer.thread);
		g_async_queue_unref(signer.queue);
	}
	if (signer.esys != NULL) {
		if (signer.key != ESYS_TR_NONE)
			Esys_FlushContext(signer.esys, signer.key);
		Esys_Finalize(&signer.esys);
	}
	if (signer.tcti != NULL)
		Tss2_TctiLdr_Finalize(&signer.tcti);
}

static void
method_call(GDBusConnection *connection, const gchar *sender, const gchar *path,
	    const gchar *interface, const gchar *method, GVariant *parameters,
	    GDBusMethodInvocation *invocation, gpointer user_data)
{
	if (g_str_equal(method, "Sign"))
		sign_and_return(invocation);
	else if (g_str_equal(method, "SignInThread") && signer.queue != NULL)
		g_async_queue_push(signer.queue, invocation);
	else if (g_str_equal(method, "SignInThread"))
		g_dbus_method_invocation_return_dbus_error(invocation, ECHO_NAME ".Error.Invalid",
							   "no TPM");
	else
		/* the argument as it came, shared, not copied: tkmsd does no less with its input */
		g_dbus_method_invocation_return_value(invocation, g_variant_ref(parameters));
}

static const GDBusInterfaceVTable vtable = {method_call, NULL, NULL, {0}};

static gboolean
quit_cb(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

static void
name_lost_cb(GDBusConnection *connection, const gchar *name, gpointer data)
{
	g_printerr("tkms-bench-echo: lost or could not own %s\n", name);
	g_main_loop_quit(data);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GDBusNodeInfo) info = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	guint owner_id;

	if (argc != 2 && argc != 3) {
		g_printerr("usage: tkms-bench-echo BUS_ADDRESS [TCTI]\n");
		return 2;
	}
	if (argc == 3 && !signer_start(argv[2], &error)) {
		g_printerr("tkms-bench-echo: %s\n", error->message);
		signer_stop();
		return 1;
	}
	connection = g_dbus_connection_new_for_address_sync(
		argv[1],
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	if (connection == NULL) {
		g_printerr("tkms-bench-echo: %s\n", error->message);
		signer_stop();
		return 1;
	}
	g_dbus_connection_set_exit_on_close(connection, TRUE);
	info = g_dbus_node_info_new_for_xml(introspection_xml, &error);
	g_assert_no_error(error);
	if (g_dbus_connection_register_object(connection, ECHO_PATH, info->interfaces[0], &vtable,
					      NULL, NULL, &error) == 0) {
		g_printerr("tkms-bench-echo: %s\n", error->message);
		signer_stop();
		return 1;
	}
	owner_id = g_bus_own_name_on_connection(connection, ECHO_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
						NULL, name_lost_cb, loop, NULL);
	g_unix_signal_add(SIGTERM, quit_cb, loop);
	g_unix_signal_add(SIGINT, quit_cb, loop);
	g_main_loop_run(loop);
	g_bus_unown_name(owner_id);
	signer_stop();
	return 0;
}
