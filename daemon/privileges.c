/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-privileges"

#include "privileges.h"

#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tkms-error.h"

/* Raw capget/capset: two 32-bit words per set (version 3), and no libcap to link. Each call is
 * a single system call, so also usable between fork and exec. */
typedef struct __user_cap_header_struct CapHeader;
typedef struct __user_cap_data_struct CapData;

static gboolean
cap_get(CapData data[2])
{
	CapHeader header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};

	/* zeroed first: a set the kernel does not fill must read as empty, not as stack garbage
	 * (and valgrind's capget wrapper marks only the first of the two words as written) */
	memset(data, 0, 2 * sizeof(CapData));
	return syscall(SYS_capget, &header, data) == 0;
}

static gboolean
cap_set_none(void)
{
	CapHeader header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	CapData none[2] = {{0, 0, 0}, {0, 0, 0}};

	return syscall(SYS_capset, &header, none) == 0;
}

static gboolean
cap_has_effective(CapData data[2], guint cap)
{
	return (data[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap)) != 0;
}

static gboolean
caps_empty(void)
{
	CapData data[2];

	if (!cap_get(data))
		return FALSE;
	for (guint i = 0; i < 2; i++)
		if (data[i].effective != 0 || data[i].permitted != 0 || data[i].inheritable != 0)
			return FALSE;
	/* the ambient set is empty when every capability has been checked: the first number
	 * past the kernel's last capability is EINVAL (as is every one before Linux 4.3, which
	 * had no ambient set) */
	for (guint cap = 0; cap < 64; cap++) {
		/* prctl() is variadic and reads unsigned longs: a guint leaves the upper half of
		 * the argument undefined */
		gint r = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, (unsigned long)cap, 0UL, 0UL);
		if (r < 0)
			break;
		if (r > 0)
			return FALSE;
	}
	return TRUE;
}

gboolean
tkms_privileges_can_switch_user(void)
{
	CapData data[2];

	if (geteuid() == 0)
		return TRUE;
	return cap_get(data) && cap_has_effective(data, CAP_SETUID) &&
	       cap_has_effective(data, CAP_SETGID);
}

static gboolean
fail(GError **error, const gchar *what)
{
	gint saved = errno;

	g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot drop tkmsd's privileges: %s: %s",
		    what, g_strerror(saved));
	return FALSE;
}

gboolean
tkms_privileges_drop_all(GError **error)
{
	/* the ambient set first: an ambient capability must stay permitted and inheritable */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		return fail(error, "PR_CAP_AMBIENT_CLEAR_ALL");
	if (!cap_set_none())
		return fail(error, "capset");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
		return fail(error, "PR_SET_KEEPCAPS");
	/* nothing tkmsd might exec could gain privileges (setuid programs, file capabilities) */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return fail(error, "PR_SET_NO_NEW_PRIVS");
	if (!caps_empty()) {
		errno = EPERM;
		return fail(error, "a capability is left");
	}
	return TRUE;
}

gboolean
tkms_privileges_clear_in_child(void)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		return FALSE;
	return cap_set_none() && caps_empty();
}

gint
tkms_privileges_thread_count(void)
{
	g_autofree gchar *status = NULL;
	const gchar *line;

	if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL))
		return -1;
	line = strstr(status, "\nThreads:");
	if (line == NULL)
		return -1;
	return (gint)g_ascii_strtoll(line + strlen("\nThreads:"), NULL, 10);
}
