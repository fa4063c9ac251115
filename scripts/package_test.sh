#!/usr/bin/env bash
# Builds the Debian package (scripts/package.sh), installs it with dpkg,
# checks the binary, the user, the directories, the configuration and the
# systemd unit (systemd-analyze verify, security score), runs flowtap as the
# service user, installs it again (an upgrade), then purges it and checks
# what is left: the event logs only. Needs root; refuses to run when a
# flowtap package is already installed (it would be purged).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "package_test: needs root (dpkg -i)" >&2; exit 1; }
if dpkg-query -W -f='${Status}' flowtap 2>/dev/null | grep -q "ok installed"; then
  echo "package_test: a flowtap package is installed already; not touching it" >&2
  exit 1
fi
for d in /var/log/flowtap /var/lib/flowtap; do
  [ ! -e "$d" ] || { echo "package_test: $d exists (an earlier install's?); not touching it" >&2; exit 1; }
done
# adduser: the postinst; systemd: systemd-analyze (not needed as PID 1).
missing=()
for p in adduser systemd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

fail() { echo "package_test: FAIL: $*" >&2; exit 1; }
expect_stat() { # path owner:group mode
  [ -e "$1" ] || fail "$1 missing"
  local got
  got=$(stat -c '%U:%G %a' "$1")
  [ "$got" = "$2 $3" ] || fail "$1 is $got, expected $2 $3"
}

deb=$(scripts/package.sh)
echo "package_test: $deb ($(du -h "$deb" | cut -f1))"
work=$(mktemp -d)
cleanup() {
  dpkg --purge flowtap >/dev/null 2>&1 || true
  rm -rf "$work" /var/log/flowtap /var/lib/flowtap
}
trap cleanup EXIT

dpkg -i "$deb" >/dev/null
/usr/bin/flowtap --version

# The user and group: a system account that cannot log in.
entry=$(getent passwd flowtap) || fail "no flowtap user"
IFS=: read -r _ _ uid gid _ home shell <<<"$entry"
[ "$uid" -lt 1000 ] || fail "flowtap uid $uid is not a system uid"
[ "$(getent group flowtap | cut -d: -f3)" = "$gid" ] || fail "flowtap's primary group is not flowtap"
[ "$shell" = /usr/sbin/nologin ] || fail "flowtap's shell is $shell"
[ "$home" = /var/lib/flowtap ] || fail "flowtap's home is $home"

# Directories, configuration (a conffile, the binary's default), dashboards.
expect_stat /var/lib/flowtap flowtap:flowtap 750
expect_stat /var/log/flowtap flowtap:flowtap 750
expect_stat /etc/flowtap root:flowtap 750
expect_stat /etc/flowtap/flowtap.toml root:flowtap 640
dpkg-query -W -f='${Conffiles}\n' flowtap | grep -q '^ /etc/flowtap/flowtap.toml ' \
  || fail "/etc/flowtap/flowtap.toml is not a conffile"
diff <(/usr/bin/flowtap default-config) /etc/flowtap/flowtap.toml >/dev/null \
  || fail "/etc/flowtap/flowtap.toml is not flowtap default-config"
for f in deploy/grafana/*.json; do
  cmp -s "$f" "/usr/share/flowtap/grafana/$(basename "$f")" || fail "dashboard $f not installed"
done

# The unit.
unit=$(dpkg -L flowtap | grep '/systemd/system/flowtap.service$') || fail "no unit installed"
systemd-analyze verify "$unit"
score=$(systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for flowtap.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "systemd-analyze security gave no score"
echo "package_test: systemd-analyze security exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }' || fail "exposure $score is above 3.0"
grep -q '^User=flowtap$' "$unit" || fail "the unit does not run as flowtap"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" || fail "the unit has no ExecReload sending SIGHUP"
grep -q '^RuntimeDirectory=flowtap$' "$unit" || fail "the unit makes no /run/flowtap for the control socket"

# flowtap as the service user writes its log directory, files 0640.
cp deploy/samples/mixed-sample.pcap "$work/"
chmod 755 "$work" && chmod 644 "$work/mixed-sample.pcap"
runuser -u flowtap -- /usr/bin/flowtap run --quiet --no-progress --config /etc/flowtap/flowtap.toml \
  --pcap "$work/mixed-sample.pcap" --output /var/log/flowtap/test.json
expect_stat /var/log/flowtap/test.json flowtap:flowtap 640
[ -s /var/log/flowtap/test.json ] || fail "no events written"

# Live AF_XDP capture as the service user with exactly the unit's
# capabilities (no root, no CAP_SYS_ADMIN), on a veth pair made here.
caps=$(sed -n 's/^AmbientCapabilities=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
if ip link add ftpkg0 type veth peer name ftpkg1 2>/dev/null; then
  ip link set ftpkg0 up && ip link set ftpkg1 up
  live_ok=0
  setpriv --reuid=flowtap --regid=flowtap --init-groups --inh-caps=-all,"$caps" \
    --ambient-caps=-all,"$caps" --bounding-set=-all,"$caps" --no-new-privs \
    /usr/bin/flowtap run --iface ftpkg0 --capture afxdp --workers 1 --duration 1 \
    --config /etc/flowtap/flowtap.toml --output /var/log/flowtap/live.json 2>"$work/live.err" || live_ok=$?
  ip link del ftpkg0
  [ "$live_ok" -eq 0 ] || fail "AF_XDP capture with $caps as flowtap: $(cat "$work/live.err")"
  expect_stat /var/log/flowtap/live.json flowtap:flowtap 640
  echo "package_test: AF_XDP capture as flowtap with $caps: ok"
else
  echo "package_test: cannot make a veth pair: live capture as flowtap not checked" >&2
fi

# An upgrade (the same version again) keeps everything.
dpkg -i "$deb" >/dev/null
expect_stat /var/log/flowtap/test.json flowtap:flowtap 640
expect_stat /etc/flowtap/flowtap.toml root:flowtap 640

# Purge: binary, configuration, user and group gone; the event log kept
# (handed to root), the empty state directory removed.
dpkg --purge flowtap >/dev/null 2>"$work/purge.err"
[ ! -e /usr/bin/flowtap ] || fail "/usr/bin/flowtap left"
[ ! -e /etc/flowtap ] || fail "/etc/flowtap left"
[ ! -e "$unit" ] || fail "$unit left"
[ ! -e /usr/share/flowtap ] || fail "/usr/share/flowtap left"
! getent passwd flowtap >/dev/null || fail "user flowtap left"
! getent group flowtap >/dev/null || fail "group flowtap left"
[ ! -e /var/lib/flowtap ] || fail "empty /var/lib/flowtap left"
expect_stat /var/log/flowtap root:root 750
expect_stat /var/log/flowtap/test.json root:root 640
grep -q "/var/log/flowtap kept" "$work/purge.err" || fail "purge did not say it kept the logs"
echo "package_test: ok"
