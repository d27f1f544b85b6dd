#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The shipped systemd files, checked by systemd's own tools without touching the machine:
#   - systemd-analyze verify of tkmsd.service (ExecStart= pointed at the built tkmsd, which
#     verify requires to exist), alone and with the drop-in tkmsd-swtpm.conf: status 0 and not
#     a single warning (an unknown or misspelt setting is only a warning);
#   - systemd-sysusers on tkms.sysusers in an empty root: the user tkms with the state
#     directory as its home, in group tss.
# Usage: check-unit.sh UNIT DROPIN SYSUSERS TKMSD STATEDIR. Exits 77 without the tools.
set -eu

unit=$1 dropin=$2 sysusers=$3 tkmsd=$4 statedir=$5
analyze=$(command -v systemd-analyze || true)
sysusers_bin=$(command -v systemd-sysusers || true)
if [ -z "$analyze" ] || [ -z "$sysusers_bin" ]; then
	echo "systemd-analyze or systemd-sysusers is missing (Debian package systemd)"
	exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

verify() {
	out=$("$analyze" verify --man=no "$tmp/units/tkmsd.service" 2>&1) || {
		printf 'systemd-analyze verify failed (%s):\n%s\n' "$1" "$out"
		exit 1
	}
	if [ -n "$out" ]; then
		printf 'systemd-analyze verify warns (%s):\n%s\n' "$1" "$out"
		exit 1
	fi
	echo "ok: systemd-analyze verify ($1)"
}

mkdir "$tmp/units"
sed "s|^ExecStart=.*|ExecStart=$tkmsd|" "$unit" >"$tmp/units/tkmsd.service"
grep -q "^ExecStart=$tkmsd\$" "$tmp/units/tkmsd.service"
verify "the unit"
mkdir "$tmp/units/tkmsd.service.d"
cp "$dropin" "$tmp/units/tkmsd.service.d/"
verify "the unit with tkmsd-swtpm.conf"

mkdir -p "$tmp/root/etc"
"$sysusers_bin" --root="$tmp/root" "$sysusers" >/dev/null 2>&1 || {
	echo "systemd-sysusers refused $sysusers"
	"$sysusers_bin" --root="$tmp/root" "$sysusers"
	exit 1
}
user=$(grep '^tkms:' "$tmp/root/etc/passwd" || true)
case $user in
tkms:x:*:*:*:"$statedir":*) ;;
*)
	printf 'no user tkms with home %s: %s\n' "$statedir" "$user"
	exit 1
	;;
esac
grep -Eq '^tss:x:[0-9]+:(.*,)?tkms(,.*)?$' "$tmp/root/etc/group" || {
	echo "tkms is not in group tss:"
	cat "$tmp/root/etc/group"
	exit 1
}
echo "ok: systemd-sysusers ($user, in tss)"
