#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds tkms and runs a demonstration: tkmsd on a TPM (the machine's /dev/tpmrm0, or a
# software TPM started here), on the system bus if one runs with polkit (else on a private,
# system-like bus with the real polkitd), then a walk through tkmsctl. The shipped polkit
# defaults decide every call. tkmsd runs as the shipped unit runs it: as the user tkms (made
# if missing) in group tss, its hook launcher alone with CAP_SETUID/SETGID/KILL. tkmsd is
# left running; a second run keeps the keys.
#
#   ./setup_app.sh                   build, (re)start, demo; keeps the keys of an earlier run
#   ./setup_app.sh --reset           the same, after deleting the earlier run's keys and state
#   ./setup_app.sh --restart-daemon  restart tkmsd alone (after editing its tkmsd.conf)
#   ./setup_app.sh --stop            stop everything the demo started and remove its files
#   ./setup_app.sh --private-bus     never use the machine's system bus
#   ./setup_app.sh --swtpm           use a software TPM even if /dev/tpmrm0 exists
#
# Must run as root on Debian 12. Environment: TKMS_DEMO_DIR (default /var/tmp/tkms-demo),
# TKMS_BUILD_DIR (default build), TKMS_SKIP_APT=1 to never run apt-get.
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")"
REPO=$(pwd)
DEMO_DIR=${TKMS_DEMO_DIR:-/var/tmp/tkms-demo}
BUILD_DIR=${TKMS_BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$REPO/$BUILD_DIR ;; esac
PIDFILE=$DEMO_DIR/pids
ENVFILE=$DEMO_DIR/env
# What this demo's processes were started with (sourced by --restart-daemon).
SETTINGS=$DEMO_DIR/settings
INSTALLED=$DEMO_DIR/installed-files
STATE_DIR=$DEMO_DIR/state
CONFIG=$DEMO_DIR/tkmsd.conf
WORK=$DEMO_DIR/work
# Copies of tkmsctl and libtkms that every user can run (a checkout in /root is mode 0700).
STAGED_BIN=$DEMO_DIR/bin
STAGED_LIB=$DEMO_DIR/lib
STAGED_TKMSD=$STAGED_LIB/tkmsd
TKMSD=$BUILD_DIR/daemon/tkmsd
# tkmsd runs as the shipped unit runs it: as the user tkms in group tss (made from the built
# sysusers file), with CAP_SETUID, CAP_SETGID and CAP_KILL for its hook launcher alone, from a
# copy the user can reach (a checkout in /root is mode 0700).
DAEMON_USER=tkms
DAEMON_GROUP=tss
UNIT_CAPS=+setuid,+setgid,+kill
SYSUSERS=$BUILD_DIR/data/tkms.sysusers
BUILT_TKMSCTL=$BUILD_DIR/client/tkmsctl/tkmsctl
TKMSCTL=$STAGED_BIN/tkmsctl
POLICY=$BUILD_DIR/polkit/org.tkms.KeyManager.policy
POLKITD=/usr/lib/polkit-1/polkitd
POLICY_DEST=/usr/share/polkit-1/actions/org.tkms.KeyManager.policy
SYSTEM_BUS_SOCKET=${TKMS_SYSTEM_BUS_SOCKET:-/run/dbus/system_bus_socket}
PYTHON=/usr/bin/python3
# The user of the refused call: any account that is not root will do.
OTHER_USER=nobody

PACKAGES=(
	meson ninja-build pkg-config gcc libc6-dev
	libglib2.0-dev libglib2.0-bin libjson-glib-dev libtss2-dev libpolkit-gobject-1-dev
	libssl-dev libdbus-1-dev libsqlite3-dev
	swtpm swtpm-tools tpm2-tools
	python3-gi
	gettext dbus-daemon polkitd openssl util-linux
	gobject-introspection libgirepository1.0-dev
	postgresql postgresql-client
	gnome-keyring libsecret-1-dev
)

if [ -t 1 ]; then
	BOLD=$'\e[1m' DIM=$'\e[2m' RED=$'\e[31m' GREEN=$'\e[32m' RESET=$'\e[0m'
else
	BOLD='' DIM='' RED='' GREEN='' RESET=''
fi

say() { printf '%s\n' "$@"; }
die() {
	printf '%sError:%s %s\n' "$RED" "$RESET" "$*" >&2
	exit 1
}
step() {
	printf '\n%s==> %s%s\n' "$BOLD" "$1" "$RESET"
	shift
	local line
	for line in "$@"; do printf '    %s\n' "$line"; done
}
ok() { printf '    %s✓ %s%s\n' "$GREEN" "$*" "$RESET"; }
# Prints a command (shell-quoted), then runs it.
show() { printf '%s$ %s%s\n' "$DIM" "$*" "$RESET"; }
quoted() { local q; q=$(printf '%q ' "$@"); printf '%s' "${q% }"; }
run() {
	show "$(quoted "$@")"
	"$@"
}

usage() {
	sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------------------------------
# Processes the demo started: one "name pid" per line in $PIDFILE.

record_pid() { echo "$1 $2" >>"$PIDFILE"; }

# Kills a recorded process if it is still the one we started (same command name).
kill_recorded() {
	local name=$1 pid=$2 comm i
	[ -r "/proc/$pid/comm" ] || return 0
	comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
	[ "$comm" = "$name" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		[ -e "/proc/$pid" ] || return 0
		# A zombie child of ours counts as gone.
		grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# The pid recorded for NAME that is still running, or nothing.
recorded_pid() {
	local name pid
	[ -f "$PIDFILE" ] || return 0
	while read -r name pid; do
		if [ "$name" = "$1" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; then
			echo "$pid"
			return 0
		fi
	done <"$PIDFILE"
}

reload_system_bus() {
	gdbus call --address "unix:path=$SYSTEM_BUS_SOCKET" --dest org.freedesktop.DBus \
		--object-path /org/freedesktop/DBus --method org.freedesktop.DBus.ReloadConfig \
		>/dev/null 2>&1 || true
}

# Stops what a previous run started and removes the files it installed outside $DEMO_DIR
# (putting back what they replaced). $DEMO_DIR itself, with the keys, stays.
stop_processes() {
	local name pid removed_conf=0 f
	if [ -f "$PIDFILE" ]; then
		# Reverse start order: tkmsd first, the bus last.
		while read -r name pid; do
			[ -n "$name" ] && kill_recorded "$name" "$pid"
		done < <(tac "$PIDFILE")
		rm -f "$PIDFILE"
	fi
	if [ -f "$INSTALLED" ]; then
		while read -r f; do
			[ -n "$f" ] || continue
			if [ -f "$DEMO_DIR/saved/${f//\//_}" ]; then
				mv -f "$DEMO_DIR/saved/${f//\//_}" "$f"
			else
				rm -f "$f"
			fi
			case $f in /etc/dbus-1/*) removed_conf=1 ;; esac
		done <"$INSTALLED"
		rm -f "$INSTALLED"
		[ "$removed_conf" = 1 ] && reload_system_bus
	fi
	return 0
}

# Says what --reset and --stop delete: every entry of $DEMO_DIR, and what it holds.
describe_demo_dir() {
	local f what n
	[ -d "$DEMO_DIR" ] || {
		say "    nothing to delete: $DEMO_DIR does not exist"
		return 0
	}
	say "    This deletes $DEMO_DIR and everything in it:"
	for f in "$DEMO_DIR"/*; do
		[ -e "$f" ] || continue
		case ${f##*/} in
		state)
			n=$(find "$f" -maxdepth 3 -type f 2>/dev/null | wc -l)
			what="tkmsd's state: every key of the demo (all users), the audit log ($n files)"
			;;
		tpm) what="the software TPM's state (its seeds: the keys' blobs open only with it)" ;;
		tkmsd.conf) what="tkmsd's configuration, with your edits" ;;
		work) what="the demo's sample files (plaintexts, ciphertexts, signatures)" ;;
		bus) what="the private bus's configuration and socket" ;;
		bin | lib) what="the copy of tkmsctl every user can run" ;;
		*.log) what="a log" ;;
		env | settings | pids | installed-files | saved) what="the demo's bookkeeping" ;;
		*) what="" ;;
		esac
		printf '      %-36s %s\n' "$f" "$what"
	done
	if [ -s "$INSTALLED" ]; then
		say "    and the files it installed outside $DEMO_DIR:"
		sed 's/^/      /' "$INSTALLED"
	fi
}

# ---------------------------------------------------------------------------------------
# Setup helpers

require_root() {
	[ "$(id -u)" = 0 ] || die "run me as root (I install packages, the polkit policy, and start polkitd)"
}

install_packages() {
	local -a missing=()
	local p status
	for p in "${PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$status" = installed ] || missing+=("$p")
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		ok "all packages already installed"
		return 0
	fi
	[ "${TKMS_SKIP_APT:-0}" = 1 ] && die "missing packages (TKMS_SKIP_APT=1): ${missing[*]}"
	say "    installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -q -y --no-install-recommends "${missing[@]}"
}

build() {
	if [ -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$BUILD_DIR" >/dev/null || meson setup --wipe "$BUILD_DIR"
	else
		rm -rf "$BUILD_DIR"
		meson setup "$BUILD_DIR"
	fi
	# The daemon, the CLI and the polkit policy are enough for the demo; fall back to a full
	# build if the target names ever change.
	ninja -C "$BUILD_DIR" -j2 daemon/tkmsd client/tkmsctl/tkmsctl \
		polkit/org.tkms.KeyManager.policy || ninja -C "$BUILD_DIR" -j2
	[ -x "$TKMSD" ] || die "$TKMSD was not built"
	[ -x "$BUILT_TKMSCTL" ] || die "$BUILT_TKMSCTL was not built"
	[ -f "$POLICY" ] || die "$POLICY was not built"
}

# tkmsctl finds libtkms next to it in the build tree, which other users may not reach.
stage_tkmsctl() {
	local lib
	lib=$(ldd "$BUILT_TKMSCTL" | awk '$1 ~ /^libtkms\.so/ { print $3 }')
	rm -rf "$STAGED_BIN" "$STAGED_LIB"
	mkdir -p "$STAGED_BIN" "$STAGED_LIB"
	chmod 0755 "$STAGED_BIN" "$STAGED_LIB"
	install -m 0755 "$BUILT_TKMSCTL" "$STAGED_LIB/tkmsctl"
	install -m 0755 "$TKMSD" "$STAGED_TKMSD"
	[ -n "$lib" ] && install -m 0644 "$lib" "$STAGED_LIB/"
	cat >"$TKMSCTL" <<EOF
#!/bin/sh
# tkmsctl from $BUILD_DIR, staged by setup_app.sh so that every user can run it.
LD_LIBRARY_PATH='$STAGED_LIB'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} exec '$STAGED_LIB/tkmsctl' "\$@"
EOF
	chmod 0755 "$TKMSCTL"
}

# Two consecutive free TCP ports on 127.0.0.1 (swtpm's server and control port).
free_port_pair() {
	"$PYTHON" - <<'PY'
import random, socket
for _ in range(500):
    port = random.randint(20000, 60000)
    socks = []
    try:
        for p in (port, port + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(port)
    break
else:
    raise SystemExit("no free port pair")
PY
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

name_has_owner() {
	gdbus call --address "$1" --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
		--method org.freedesktop.DBus.NameHasOwner "$2" 2>/dev/null | grep -q true
}

name_activatable() {
	gdbus call --address "$1" --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
		--method org.freedesktop.DBus.ListActivatableNames 2>/dev/null | grep -q "'$2'"
}

# wait_until SECONDS PID DESCRIPTION COMMAND...: polls COMMAND until it succeeds; fails early
# if PID (when not empty) exits.
wait_until() {
	local secs=$1 pid=$2 what=$3 i
	shift 3
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			say "    $what exited during startup"
			return 1
		fi
		sleep 0.1
	done
	say "    timed out after ${secs}s waiting for $what"
	return 1
}

# Starts a detached process (own session, survives this script), logging to $1.
spawn() {
	local log=$1
	shift
	setsid "$@" >>"$log" 2>&1 </dev/null &
	SPAWNED_PID=$!
}

start_swtpm() {
	local port kept=""
	port=$(free_port_pair)
	[ -d "$DEMO_DIR/tpm" ] && [ -n "$(ls -A "$DEMO_DIR/tpm")" ] && kept=" (kept from the earlier run)"
	mkdir -p "$DEMO_DIR/tpm"
	chmod 0700 "$DEMO_DIR/tpm"
	spawn "$DEMO_DIR/swtpm.log" swtpm socket --tpm2 \
		--flags not-need-init,startup-clear \
		--server "type=tcp,port=$port,bindaddr=127.0.0.1" \
		--ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
		--tpmstate "dir=$DEMO_DIR/tpm"
	record_pid swtpm "$SPAWNED_PID"
	wait_until 10 "$SPAWNED_PID" swtpm tcp_open $((port + 1)) || die "swtpm did not start, see $DEMO_DIR/swtpm.log"
	TCTI="swtpm:host=127.0.0.1,port=$port"
	ok "swtpm (pid $SPAWNED_PID) listens on 127.0.0.1:$port, state in $DEMO_DIR/tpm$kept"
}

write_private_bus_config() {
	local dir=$DEMO_DIR/bus
	rm -rf "$dir"
	mkdir -p "$dir/system.d"
	chmod 0755 "$dir" "$dir/system.d"
	cat >"$dir/system.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- tkms demo: a private bus with the rules of the system bus (deny by default). -->
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>$dir/system.d</includedir>
</busconfig>
EOF
	# The shipped policy of tkms, unchanged.
	install -m 0644 "$REPO/data/org.tkms.KeyManager.conf" "$dir/system.d/"
	# polkitd's own bus policy, as on the system bus: it drops privileges to the user
	# polkitd, which alone may own its name; everyone may call it.
	if [ -f /usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf ]; then
		install -m 0644 /usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf "$dir/system.d/"
	else
		cat >"$dir/system.d/org.freedesktop.PolicyKit1.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="polkitd">
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow send_interface="org.freedesktop.PolicyKit1.AuthenticationAgent"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
</busconfig>
EOF
	fi
	# An older polkitd that keeps running as root.
	cat >"$dir/system.d/demo-polkitd-root.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
</busconfig>
EOF
}

start_private_bus() {
	write_private_bus_config
	ADDR="unix:path=$DEMO_DIR/bus/system_bus_socket"
	spawn "$DEMO_DIR/dbus-daemon.log" dbus-daemon --nofork --nopidfile \
		--config-file="$DEMO_DIR/bus/system.conf"
	record_pid dbus-daemon "$SPAWNED_PID"
	wait_until 10 "$SPAWNED_PID" dbus-daemon name_has_owner "$ADDR" org.freedesktop.DBus ||
		die "dbus-daemon did not start, see $DEMO_DIR/dbus-daemon.log"
	ok "private system-like bus (pid $SPAWNED_PID): $ADDR"

	[ -x "$POLKITD" ] || die "$POLKITD not found (install polkitd)"
	install_system_file "$POLICY" "$POLICY_DEST"
	# The real polkitd, as on the system bus: it reads the shipped .policy (and the machine's
	# /etc/polkit-1/rules.d), and the defaults decide. It must start as root.
	spawn "$DEMO_DIR/polkitd.log" env DBUS_SYSTEM_BUS_ADDRESS="$ADDR" "$POLKITD" --no-debug
	record_pid polkitd "$SPAWNED_PID"
	wait_until 15 "$SPAWNED_PID" polkitd name_has_owner "$ADDR" org.freedesktop.PolicyKit1 ||
		die "polkitd did not start, see $DEMO_DIR/polkitd.log"
	ok "polkitd (pid $SPAWNED_PID) on that bus decides by $POLICY_DEST"
}

# Installs a file unless an identical one is there; records what it installed, and sets aside
# a different file it replaces (put back by --stop).
install_system_file() {
	local src=$1 dest=$2
	if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
		ok "$dest already installed"
		return 0
	fi
	if [ -e "$dest" ]; then
		mkdir -p "$DEMO_DIR/saved"
		cp -p "$dest" "$DEMO_DIR/saved/${dest//\//_}"
	fi
	echo "$dest" >>"$INSTALLED"
	install -D -m 0644 "$src" "$dest"
	ok "installed $dest"
}

use_system_bus() {
	ADDR="unix:path=$SYSTEM_BUS_SOCKET"
	if name_has_owner "$ADDR" org.tkms.KeyManager; then
		die "org.tkms.KeyManager is already owned on the system bus (an installed tkmsd?). Stop it (systemctl stop tkmsd) or use --private-bus."
	fi
	install_system_file "$REPO/data/org.tkms.KeyManager.conf" /etc/dbus-1/system.d/org.tkms.KeyManager.conf
	install_system_file "$POLICY" "$POLICY_DEST"
	reload_system_bus
	ok "system bus: $ADDR (D-Bus policy reloaded; the machine's polkitd decides)"
}

# The user tkmsd runs as, as a package install makes it (systemd-sysusers with the shipped
# file; useradd where systemd is not installed). Before the bus reads its policy, which names
# the user.
ensure_daemon_user() {
	if id -nG "$DAEMON_USER" 2>/dev/null | grep -qw "$DAEMON_GROUP"; then
		ok "user $DAEMON_USER (group $DAEMON_GROUP) exists"
		return 0
	fi
	if command -v systemd-sysusers >/dev/null; then
		run systemd-sysusers "$SYSUSERS"
	else
		getent group "$DAEMON_GROUP" >/dev/null || run groupadd --system "$DAEMON_GROUP"
		id "$DAEMON_USER" >/dev/null 2>&1 ||
			run useradd --system --no-create-home --home-dir /var/lib/tkms \
				--shell /usr/sbin/nologin --user-group "$DAEMON_USER"
		run usermod -a -G "$DAEMON_GROUP" "$DAEMON_USER"
	fi
	id -nG "$DAEMON_USER" | grep -qw "$DAEMON_GROUP" || die "cannot make the user $DAEMON_USER in group $DAEMON_GROUP"
	ok "made the user $DAEMON_USER (group $DAEMON_GROUP) tkmsd runs as"
}

start_tkmsd() {
	mkdir -p "$STATE_DIR"
	chmod 0700 "$STATE_DIR"
	# owned by tkmsd's user, as systemd's StateDirectory= does (the root-owned state of an
	# earlier demo included)
	chown -R "$DAEMON_USER:$DAEMON_GROUP" "$STATE_DIR"
	spawn "$DEMO_DIR/tkmsd.log" env DBUS_SYSTEM_BUS_ADDRESS="$ADDR" \
		setpriv --reuid="$DAEMON_USER" --regid="$DAEMON_GROUP" --init-groups \
		--inh-caps=-all,$UNIT_CAPS --ambient-caps=-all,$UNIT_CAPS \
		--bounding-set=-all,$UNIT_CAPS --no-new-privs -- \
		"$STAGED_TKMSD" --bus-address "$ADDR" --tcti "$TCTI" --state-dir "$STATE_DIR" \
		--config "$CONFIG" --verbose
	TKMSD_PID=$SPAWNED_PID
	record_pid tkmsd "$TKMSD_PID"
	wait_until 30 "$TKMSD_PID" tkmsd name_has_owner "$ADDR" org.tkms.KeyManager || {
		tail -n 30 "$DEMO_DIR/tkmsd.log" >&2 || true
		die "tkmsd did not start, see $DEMO_DIR/tkmsd.log"
	}
	ok "tkmsd (pid $TKMSD_PID, user $DAEMON_USER, group $DAEMON_GROUP, no capability) owns org.tkms.KeyManager; configuration $CONFIG"
	ok "its hook launcher (pid $(pgrep -P "$TKMSD_PID" -x tkmsd-hooks || echo '?')) alone keeps CAP_SETUID, CAP_SETGID and CAP_KILL, to run password hooks"
}

# Restarts tkmsd alone, with the bus, TPM and state it had (for a configuration change).
restart_daemon() {
	local pid
	[ -f "$SETTINGS" ] || die "no demo in $DEMO_DIR: run ./setup_app.sh first"
	# shellcheck source=/dev/null
	. "$SETTINGS"
	name_has_owner "$ADDR" org.freedesktop.DBus ||
		die "the demo's bus $ADDR is not running: run ./setup_app.sh"
	[ -x "$STAGED_TKMSD" ] || die "$STAGED_TKMSD is missing: run ./setup_app.sh"
	pid=$(recorded_pid tkmsd)
	if [ -n "$pid" ]; then
		kill_recorded tkmsd "$pid"
		ok "stopped tkmsd (pid $pid)"
	fi
	grep -v '^tkmsd ' "$PIDFILE" >"$PIDFILE.new" || true
	mv -f "$PIDFILE.new" "$PIDFILE"
	start_tkmsd
}

write_env_file() {
	cat >"$SETTINGS" <<EOF
# setup_app.sh: how the demo's processes were started (read by --restart-daemon)
ADDR='$ADDR'
TCTI='$TCTI'
TPM_KIND='$TPM_KIND'
EOF
	cat >"$ENVFILE" <<EOF
# tkms demo: source this file. busctl, gdbus --system and tkmsctl then reach the demo's tkmsd.
export DBUS_SYSTEM_BUS_ADDRESS='$ADDR'
export TKMS_ADDRESS='$ADDR'
# the demo's state directory (tkmsctl audit verify --state-dir "\$TKMS_STATE_DIR")
export TKMS_STATE_DIR='$STATE_DIR'
# tkmsctl, built from $REPO
export PATH='$STAGED_BIN':"\$PATH"
EOF
	chmod 0644 "$ENVFILE"
}

# ---------------------------------------------------------------------------------------
# The demonstration

# "tkmsctl" in the transcript is the staged tkmsctl on $ADDR.
ctl() {
	show "tkmsctl $(quoted "$@")"
	"$TKMSCTL" --address "$ADDR" "$@"
}

# expect_status CODE COMMAND...: runs a command that must exit with CODE.
expect_status() {
	local want=$1 rc=0
	shift
	"$@" || rc=$?
	[ "$rc" = "$want" ] || die "expected exit status $want, got $rc: $*"
}

# Creates a key unless an earlier run did: names are never reused, and the keys survive.
ensure_key() {
	local name=$1
	shift
	if "$TKMSCTL" --address "$ADDR" info "$name" >/dev/null 2>&1; then
		ok "key $name exists (kept from an earlier run)"
	else
		ctl create "$name" "$@"
	fi
}

# Runs the staged tkmsctl as $OTHER_USER (no groups, a clean environment) on the demo's bus.
# $SHOW_STDIN names the file on its standard input in the transcript.
as_other_user() {
	show "$(quoted setpriv --reuid="$OTHER_USER" --regid="$OTHER_GROUP" --clear-groups tkmsctl "$@")${SHOW_STDIN:+ < $SHOW_STDIN}"
	setpriv --reuid="$OTHER_USER" --regid="$OTHER_GROUP" --clear-groups \
		env -i PATH=/usr/bin:/bin HOME=/ LANG="${LANG:-C.UTF-8}" \
		DBUS_SYSTEM_BUS_ADDRESS="$ADDR" "$TKMSCTL" --no-ask-password "$@"
}

demo() {
	mkdir -p "$WORK"
	chmod 0700 "$WORK"
	cd "$WORK"

	step "1. Status" \
		"tkmsctl talks to tkmsd over D-Bus; 'status' shows the daemon version and the TPM it uses." \
		"Below, 'tkmsctl' stands for: $TKMSCTL --address $ADDR"
	ctl status

	step "2. Encryption with a sealed AES-256-GCM key" \
		"The key is random material from the TPM's RNG, sealed by the TPM. tkmsd unseals it into" \
		"OpenSSL's secure heap only to use it. The context is bound to the ciphertext (AEAD)."
	ensure_key demo-aes aes-256-gcm --description "setup_app.sh demo"
	echo "The quick brown fox jumps over the lazy dog" >plain.txt
	ctl encrypt demo-aes --context demo --in plain.txt --out cipher.bin
	say "    ciphertext: $(stat -c %s cipher.bin) bytes for $(stat -c %s plain.txt) bytes of plaintext; header: $(head -c 4 cipher.bin | od -An -c | tr -s ' ')"
	ctl decrypt demo-aes --context demo --in cipher.bin --out decrypted.txt
	cmp -s plain.txt decrypted.txt || die "decrypted text differs from the plaintext"
	ok "decrypted: $(cat decrypted.txt)"
	say "    The wrong context must fail (integrity check):"
	expect_status 1 ctl decrypt demo-aes --context other --in cipher.bin --out /dev/null
	ok "refused, as it should be"

	step "3. Signatures with an ECDSA P-256 key that never leaves the TPM" \
		"The TPM signs SHA-256(data); the signature is standard DER, so OpenSSL verifies it."
	ensure_key demo-sign ecdsa-p256
	ctl pubkey demo-sign --out demo-sign.pem
	cat demo-sign.pem
	echo "release 1.0 checksum 0123456789abcdef" >message.txt
	ctl sign demo-sign --in message.txt --out message.sig
	run openssl dgst -sha256 -verify demo-sign.pem -signature message.sig message.txt
	ok "OpenSSL verified the TPM's signature"
	ctl verify demo-sign --signature message.sig --in message.txt
	ok "tkmsctl verify: valid"
	echo "tampered" >>message.txt
	say "    A changed message must not verify (exit status 3):"
	expect_status 3 ctl verify demo-sign --signature message.sig --in message.txt
	ok "invalid signature detected"

	step "4. Sealing data to this TPM" \
		"Seal returns a blob that only this TPM can open, and only for the same user."
	printf 'db-password=%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >secret.txt
	ctl seal --in secret.txt --out secret.blob
	say "    sealed blob: $(stat -c %s secret.blob) bytes"
	ctl unseal --in secret.blob --out unsealed.txt
	cmp -s secret.txt unsealed.txt || die "unsealed data differs"
	ok "unsealed data matches"

	step "5. Your keys" "Keys belong to the calling user (here root: system keys, system:NAME)."
	ctl list

	step "6. Another user meets the polkit defaults" \
		"Every other account may use its own keys (the actions read-key, create-key, use-key," \
		"seal, destroy-key default to yes). Root's keys are system keys: addressing one as" \
		"system:NAME needs org.tkms.KeyManager.admin as well, whose default is auth_admin_keep." \
		"Here user $OTHER_USER lists its own keys, then tries to read root's ciphertext."
	as_other_user list
	ok "allowed: $OTHER_USER's own keys"
	local rc=0
	SHOW_STDIN=cipher.bin as_other_user decrypt system:demo-aes --context demo --out - <cipher.bin || rc=$?
	[ "$rc" = 5 ] || die "expected permission denied (exit status 5), got $rc: $OTHER_USER must not decrypt system:demo-aes"
	ok "refused (PermissionDenied, exit status 5)"
	say "    Why: admin is auth_admin_keep, so polkit wants an administrator's password, asked" \
		"    through an authentication agent. $OTHER_USER has none here (and --no-ask-password):" \
		"    polkit answers no, and tkmsd refuses (PermissionDenied) before it reads the key." \
		"    On a terminal with an agent, the same call would ask for root's password."
	say "    The refusal is in the audit log:"
	grep '"PermissionDenied"' "$STATE_DIR/audit.log" | tail -n 1 | sed 's/^/      /' || true

	step "7. Audit log" \
		"Every call, and every refusal, is recorded in a hash-chained log in the state directory;" \
		"verify the chain."
	ctl audit verify --state-dir "$STATE_DIR"
	ok "audit chain intact"
	cd "$REPO"
}

print_summary() {
	step "tkmsd is running" \
		"bus:    $ADDR" \
		"user:   $DAEMON_USER (group $DAEMON_GROUP), as under the shipped unit" \
		"TPM:    $TCTI" \
		"state:  $STATE_DIR (kept when you run ./setup_app.sh again)" \
		"config: $CONFIG" \
		"logs:   $DEMO_DIR/*.log" \
		"pids:   $PIDFILE ($(tr '\n' ' ' <"$PIDFILE"))"
	cat <<EOF

Talk to it (the env file sets DBUS_SYSTEM_BUS_ADDRESS, TKMS_ADDRESS and PATH):
  source $ENVFILE
  tkmsctl list
  busctl call org.tkms.KeyManager /org/tkms/KeyManager org.tkms.KeyManager ListKeys
  busctl introspect org.tkms.KeyManager /org/tkms/KeyManager

After editing $CONFIG, restart tkmsd alone (same bus, TPM and keys):
  $0 --restart-daemon

Start afresh (deletes the demo's keys and state; says what first):
  $0 --reset
Stop everything and remove $DEMO_DIR:
  $0 --stop
EOF
}

# ---------------------------------------------------------------------------------------

main() {
	local private_bus=0 force_swtpm=0 reset=0 action=demo arg
	for arg in "$@"; do
		case $arg in
		--stop) action=stop ;;
		--restart-daemon) action=restart ;;
		--reset) reset=1 ;;
		--private-bus) private_bus=1 ;;
		--swtpm) force_swtpm=1 ;;
		-h | --help)
			usage
			exit 0
			;;
		*)
			usage >&2
			exit 2
			;;
		esac
	done
	require_root

	case $action in
	stop)
		step "Stopping the tkms demo"
		describe_demo_dir
		stop_processes
		rm -rf "$DEMO_DIR"
		say "tkms demo stopped, $DEMO_DIR removed."
		exit 0
		;;
	restart)
		step "Restarting tkmsd (bus, TPM, keys and the other processes stay)"
		restart_daemon
		exit 0
		;;
	esac

	if [ "$reset" = 1 ]; then
		step "Starting afresh (--reset)"
		describe_demo_dir
		stop_processes
		rm -rf "$DEMO_DIR"
		ok "deleted $DEMO_DIR"
	elif [ -d "$STATE_DIR" ]; then
		step "Restarting the demo in $DEMO_DIR" \
			"Its keys, TPM state and configuration are kept; ./setup_app.sh --reset starts afresh."
		stop_processes
		ok "stopped the processes of the earlier run"
	else
		stop_processes
	fi
	mkdir -p "$DEMO_DIR"
	chmod 0755 "$DEMO_DIR"

	# From here on, a failure stops what was started but keeps the logs and the state.
	trap 'rc=$?; if [ $rc -ne 0 ]; then echo "setup_app.sh failed; logs are in '"$DEMO_DIR"'" >&2; stop_processes; fi' EXIT

	step "Installing packages" "build tools, tpm2-tss, GLib, polkit, swtpm, dbus"
	install_packages

	step "Building tkms in $BUILD_DIR"
	build
	stage_tkmsctl
	ok "built $TKMSD and tkmsctl (staged as $STAGED_TKMSD and $TKMSCTL, so that every user can run them)"
	ensure_daemon_user

	step "TPM"
	local previous_kind=""
	# shellcheck source=/dev/null
	[ -f "$SETTINGS" ] && previous_kind=$(. "$SETTINGS" && echo "${TPM_KIND:-}")
	if [ "$force_swtpm" = 0 ] && [ -c /dev/tpmrm0 ] && [ "$previous_kind" != swtpm ]; then
		TPM_KIND=device
		TCTI=device:/dev/tpmrm0
		ok "using the machine's TPM through the kernel resource manager: $TCTI"
	else
		if [ "$previous_kind" = device ]; then
			die "the keys in $STATE_DIR belong to the machine's TPM; drop --swtpm, or start afresh with --reset"
		fi
		TPM_KIND=swtpm
		[ "$force_swtpm" = 1 ] || [ -c /dev/tpmrm0 ] || say "    no /dev/tpmrm0: starting a software TPM"
		start_swtpm
	fi

	step "Message bus and polkit"
	if [ "$private_bus" = 0 ] && [ -S "$SYSTEM_BUS_SOCKET" ] &&
		name_has_owner "unix:path=$SYSTEM_BUS_SOCKET" org.freedesktop.DBus &&
		{ name_has_owner "unix:path=$SYSTEM_BUS_SOCKET" org.freedesktop.PolicyKit1 ||
			name_activatable "unix:path=$SYSTEM_BUS_SOCKET" org.freedesktop.PolicyKit1; }; then
		use_system_bus
	else
		say "    no system bus with polkit (or --private-bus): starting a private one with polkitd"
		start_private_bus
	fi

	step "Starting tkmsd"
	if [ -f "$CONFIG" ]; then
		ok "keeping $CONFIG"
	else
		install -m 0644 "$REPO/data/tkmsd.conf" "$CONFIG"
	fi
	start_tkmsd
	write_env_file

	OTHER_GROUP=$(id -gn "$OTHER_USER") || die "user $OTHER_USER does not exist"
	demo
	print_summary
	trap - EXIT
}

main "$@"
