/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A preload library for tests (LD_PRELOAD into tkmsd): fsync and fdatasync of the audit log's
 * files (audit.*) fail with EIO while the file named by TKMS_TEST_FAIL_SYNC exists. A full
 * disk fails the write; this fails the sync after a write that worked, the case a full disk
 * cannot show. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
should_fail(int fd)
{
	const char *marker = getenv("TKMS_TEST_FAIL_SYNC");
	char link[64], path[4096];
	const char *base;
	ssize_t n;

	if (marker == NULL || access(marker, F_OK) != 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return 0;
	path[n] = '\0';
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	return strncmp(base, "audit.", 6) == 0;
}

int
fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	if (should_fail(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd);
}

int
fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

	if (should_fail(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd);
}
