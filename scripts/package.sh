#!/usr/bin/env bash
# Builds the Debian package into target/debian/ (cargo-deb, metadata in
# engine/Cargo.toml [package.metadata.deb]): /usr/bin/flowtap, the conffile
# /etc/flowtap/flowtap.toml, the Grafana dashboards, the systemd unit
# (deploy/systemd/flowtap.service) and the maintainer scripts (deploy/debian/).
# Reuses target/release: only what changed is rebuilt.
# Prints the path of the .deb on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

# The packaged configuration is the binary's own default (a test checks that
# they are equal; this catches a stale file before it ships).
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "package: installing cargo-deb" >&2
  cargo install cargo-deb --locked >&2
fi
cargo build --release -p engine --bin flowtap >&2
if ! diff -q <(target/release/flowtap default-config) deploy/flowtap.toml >/dev/null; then
  echo "package: deploy/flowtap.toml differs from \`flowtap default-config\`: regenerate it" >&2
  exit 1
fi
# Stripped: the release profile keeps line tables (for profiling), which would
# make the package four times larger (13 MB instead of 3).
cargo deb -p engine --no-build --strip --output target/debian/ >&2
deb=$(ls -t target/debian/flowtap_*.deb | head -n 1)
echo "$deb"
