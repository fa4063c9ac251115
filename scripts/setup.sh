#!/usr/bin/env bash
# Installs the system packages flowtap needs to build and test (Debian).
# Idempotent: does nothing when everything is already there.
set -euo pipefail
# live capture tests and benches: ethtool (doctor, GRO), iproute2 (ip netns/link), procps (sysctl, kill)
# pcap export tests: tshark + capinfos (wireshark-common), mount (a small tmpfs to fill the disk)
packages=(tshark wireshark-common clang libelf-dev zlib1g-dev m4 pkg-config make ethtool iproute2 procps mount)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
