#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds tkms and runs a demonstration: tkmsd on a TPM (the machine's /dev/tpmrm0, or a
# software TPM started here), on the system bus if one is running (else on a private,
# system-like bus with a polkit mock), then a walk through tkmsctl. tkmsd is left running.
#
#   ./setup_app.sh                 build, start, demo (stops a previous demo first)
#   ./setup_app.sh --stop          stop everything the demo started and remove its files
#   ./setup_app.sh --private-bus   never use the machine's system bus
#   ./setup_app.sh --swtpm         use a software TPM even if /dev/tpmrm0 exists
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
INSTALLED=$DEMO_DIR/installed-files
STATE_DIR=$DEMO_DIR/state
WORK=$DEMO_DIR/work
TKMSD=$BUILD_DIR/daemon/tkmsd
TKMSCTL=$BUILD_DIR/client/tkmsctl/tkmsctl
SYSTEM_BUS_SOCKET=${TKMS_SYSTEM_BUS_SOCKET:-/run/dbus/system_bus_socket}
PYTHON=/usr/bin/python3

ACTIONS=(read-key create-key use-key seal destroy-key manage-key read-secret admin)

PACKAGES=(
	meson ninja-build pkg-config gcc libc6-dev
	libglib2.0-dev libglib2.0-bin libjson-glib-dev libtss2-dev libpolkit-gobject-1-dev
	libssl-dev libsqlite3-dev
	swtpm swtpm-tools tpm2-tools
	python3-dbusmock python3-gi
	gettext dbus-daemon polkitd openssl util-linux
	gobject-introspection libgirepository1.0-dev
)

if [ -t 1 ]; then
	BOLD=$'\e[1m' DIM=$'\e[2m' RED=$'\e[31m' GREEN=$'\e[32m' RESET=$'\e[0m'
else
	BOLD='' DIM='' RED='' GREEN='' RESET=''
fi

say() { printf '%s\n' "$*"; }
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
	sed -n '4,14p' "$0" | sed 's/^# \{0,1\}//'
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

reload_system_bus() {
	gdbus call --address "unix:path=$SYSTEM_BUS_SOCKET" --dest org.freedesktop.DBus \
		--object-path /org/freedesktop/DBus --method org.freedesktop.DBus.ReloadConfig \
		>/dev/null 2>&1 || true
}

# Stops what a previous run started. $1 = "remove" also deletes the demo directory.
stop_demo() {
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
			rm -f "$f"
			case $f in /etc/dbus-1/*) removed_conf=1 ;; esac
		done <"$INSTALLED"
		rm -f "$INSTALLED"
		[ "$removed_conf" = 1 ] && reload_system_bus
	fi
	if [ "${1:-}" = remove ]; then
		rm -rf "$DEMO_DIR"
	fi
}

# ---------------------------------------------------------------------------------------
# Setup helpers

require_root() {
	[ "$(id -u)" = 0 ] || die "run me as root (I install packages, and may install the D-Bus and polkit policy)"
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
	[ -x "$TKMSCTL" ] || die "$TKMSCTL was not built"
}

# Two consecutive free TCP ports on 127.0.0.1 (swtpm's server and control port).
free_port_pair() {
	"$PYTHON" - <<'EOF'
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
EOF
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
	local port
	port=$(free_port_pair)
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
	ok "swtpm (pid $SPAWNED_PID) listens on 127.0.0.1:$port, state in $DEMO_DIR/tpm"
}

write_private_bus_config() {
	local dir=$DEMO_DIR/bus
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
	# The polkit mock: root owns the name and alone may steer it; everyone may ask it.
	cat >"$dir/system.d/demo-polkit-mock.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow send_destination="org.freedesktop.PolicyKit1" send_interface="org.freedesktop.DBus.Mock"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1" send_interface="org.freedesktop.PolicyKit1.Authority"/>
    <allow send_destination="org.freedesktop.PolicyKit1" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.PolicyKit1" send_interface="org.freedesktop.DBus.Introspectable"/>
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

	# polkit: python-dbusmock's polkitd template, allowing exactly the tkms actions.
	spawn "$DEMO_DIR/polkit-mock.log" env DBUS_SYSTEM_BUS_ADDRESS="$ADDR" \
		"$PYTHON" -m dbusmock --system --template polkitd
	record_pid python3 "$SPAWNED_PID"
	wait_until 15 "$SPAWNED_PID" "polkit mock" name_has_owner "$ADDR" org.freedesktop.PolicyKit1 ||
		die "the polkit mock did not start, see $DEMO_DIR/polkit-mock.log"
	local list="" a
	for a in "${ACTIONS[@]}"; do list+="${list:+, }'org.tkms.KeyManager.$a'"; done
	gdbus call --address "$ADDR" --dest org.freedesktop.PolicyKit1 \
		--object-path /org/freedesktop/PolicyKit1/Authority \
		--method org.freedesktop.DBus.Mock.SetAllowed "[$list]" >/dev/null ||
		die "could not configure the polkit mock"
	ok "polkit mock (pid $SPAWNED_PID) allows: ${ACTIONS[*]}"
}

# Installs a file unless an identical one is there; records what it created.
install_system_file() {
	local src=$1 dest=$2
	if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
		ok "$dest already installed"
		return 0
	fi
	[ -e "$dest" ] || echo "$dest" >>"$INSTALLED"
	install -D -m 0644 "$src" "$dest"
	ok "installed $dest"
}

use_system_bus() {
	ADDR="unix:path=$SYSTEM_BUS_SOCKET"
	if name_has_owner "$ADDR" org.tkms.KeyManager; then
		die "org.tkms.KeyManager is already owned on the system bus (an installed tkmsd?). Stop it (systemctl stop tkmsd) or use --private-bus."
	fi
	install_system_file "$REPO/data/org.tkms.KeyManager.conf" /etc/dbus-1/system.d/org.tkms.KeyManager.conf
	install_system_file "$BUILD_DIR/polkit/org.tkms.KeyManager.policy" \
		/usr/share/polkit-1/actions/org.tkms.KeyManager.policy
	reload_system_bus
	ok "system bus: $ADDR (D-Bus policy reloaded; the real polkitd decides)"
}

start_tkmsd() {
	mkdir -p "$STATE_DIR"
	chmod 0700 "$STATE_DIR"
	install -m 0644 "$REPO/data/tkmsd.conf" "$DEMO_DIR/tkmsd.conf"
	spawn "$DEMO_DIR/tkmsd.log" env DBUS_SYSTEM_BUS_ADDRESS="$ADDR" \
		"$TKMSD" --bus-address "$ADDR" --tcti "$TCTI" --state-dir "$STATE_DIR" \
		--config "$DEMO_DIR/tkmsd.conf" --verbose
	TKMSD_PID=$SPAWNED_PID
	record_pid tkmsd "$TKMSD_PID"
	wait_until 30 "$TKMSD_PID" tkmsd name_has_owner "$ADDR" org.tkms.KeyManager || {
		tail -n 30 "$DEMO_DIR/tkmsd.log" >&2 || true
		die "tkmsd did not start, see $DEMO_DIR/tkmsd.log"
	}
	ok "tkmsd (pid $TKMSD_PID) owns org.tkms.KeyManager"
}

# ---------------------------------------------------------------------------------------
# The demonstration

# "tkmsctl" in the transcript is $TKMSCTL --address $ADDR.
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

demo() {
	mkdir -p "$WORK"
	cd "$WORK"

	step "1. Status" \
		"tkmsctl talks to tkmsd over D-Bus; 'status' shows the daemon version and the TPM it uses." \
		"Below, 'tkmsctl' stands for: $TKMSCTL --address $ADDR"
	ctl status

	step "2. Encryption with a sealed AES-256-GCM key" \
		"The key is random material from the TPM's RNG, sealed by the TPM. tkmsd unseals it into" \
		"OpenSSL's secure heap only to use it. The context is bound to the ciphertext (AEAD)."
	ctl create demo-aes aes-256-gcm --description "setup_app.sh demo"
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
	ctl create demo-sign ecdsa-p256
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

	step "5. Your keys" "Keys belong to the calling user (here root: system keys)."
	ctl list

	step "6. Audit log" \
		"Every call was recorded in a hash-chained log in the state directory; verify the chain."
	ctl audit verify --state-dir "$STATE_DIR"
	ok "audit chain intact"
	cd "$REPO"
}

print_summary() {
	cat >"$ENVFILE" <<EOF
# tkms demo (source this file)
export TKMS_ADDRESS='$ADDR'
export DBUS_SYSTEM_BUS_ADDRESS='$ADDR'
export TKMS_TCTI='$TCTI'
TKMSCTL='$TKMSCTL'
EOF
	step "tkmsd is running" \
		"bus:    $ADDR" \
		"TPM:    $TCTI" \
		"state:  $STATE_DIR" \
		"logs:   $DEMO_DIR/*.log" \
		"pids:   $PIDFILE ($(tr '\n' ' ' <"$PIDFILE"))"
	cat <<EOF

Talk to it:
  $TKMSCTL --address $ADDR list
  busctl --address=$ADDR call org.tkms.KeyManager /org/tkms/KeyManager org.tkms.KeyManager ListKeys
  busctl --address=$ADDR introspect org.tkms.KeyManager /org/tkms/KeyManager
or, for tools that use the system bus:
  source $ENVFILE; $TKMSCTL status

Stop it (and remove $DEMO_DIR):
  $0 --stop
EOF
}

# ---------------------------------------------------------------------------------------

main() {
	local private_bus=0 force_swtpm=0 arg
	for arg in "$@"; do
		case $arg in
		--stop)
			require_root
			stop_demo remove
			say "tkms demo stopped, $DEMO_DIR removed."
			exit 0
			;;
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

	step "Stopping a previous demo, if any"
	stop_demo remove
	mkdir -p "$DEMO_DIR"
	chmod 0755 "$DEMO_DIR"

	# From here on, a failure stops what was started but keeps the logs.
	trap 'rc=$?; if [ $rc -ne 0 ]; then echo "setup_app.sh failed; logs are in '"$DEMO_DIR"'" >&2; stop_demo; fi' EXIT

	step "Installing packages" "build tools, tpm2-tss, GLib, polkit, swtpm, dbus, python-dbusmock"
	install_packages

	step "Building tkms in $BUILD_DIR"
	build
	ok "built $TKMSD and $TKMSCTL"

	step "TPM"
	if [ "$force_swtpm" = 0 ] && [ -c /dev/tpmrm0 ]; then
		TCTI=device:/dev/tpmrm0
		ok "using the machine's TPM through the kernel resource manager: $TCTI"
	else
		say "    no /dev/tpmrm0 (or --swtpm): starting a software TPM"
		start_swtpm
	fi

	step "Message bus and polkit"
	if [ "$private_bus" = 0 ] && [ -S "$SYSTEM_BUS_SOCKET" ] &&
		name_has_owner "unix:path=$SYSTEM_BUS_SOCKET" org.freedesktop.DBus &&
		{ name_has_owner "unix:path=$SYSTEM_BUS_SOCKET" org.freedesktop.PolicyKit1 ||
			name_activatable "unix:path=$SYSTEM_BUS_SOCKET" org.freedesktop.PolicyKit1; }; then
		use_system_bus
	else
		say "    no system bus with polkit (or --private-bus): starting a private one"
		start_private_bus
	fi

	step "Starting tkmsd"
	start_tkmsd

	demo
	print_summary
	trap - EXIT
}

main "$@"
