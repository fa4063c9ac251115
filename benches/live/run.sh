#!/usr/bin/env bash
# Live capture benchmark on a veth pair between two throw-away network
# namespaces (traffic never leaves them). Needs root, clang, iproute2, ethtool.
#
# README
# ------
#   sudo benches/live/run.sh            # 5 s per cell
#   SECONDS_PER_RUN=10 SIZES="64 1000" SOURCES="xdp-native xdp-generic afpacket" sudo -E benches/live/run.sh
#
# For each frame size and each source (AF_XDP native, AF_XDP generic,
# AF_PACKET v3 fanout) it runs, capture-only:
#   - capture/examples/capture_count in namespace B on core 1 (stand-in for
#     `flowtap run --iface ... --capture-only` until the engine has it);
#   - capture/examples/gen in namespace A on core 0, method xdp-live
#     (BPF_F_TEST_XDP_LIVE_FRAMES + XDP_TX, 1024 UDP flows) as fast as it can.
# and prints: offered pps (gen), received pps, and drops per stage:
#   veth_drop  = frames the receiving veth dropped (rx dropped delta; includes
#                frames the XDP program could not redirect to a full socket)
#   sock_drop  = drops the socket reports (XDP_STATISTICS rx_dropped +
#                rx_ring_full, or PACKET_STATISTICS tp_drops)
#   lost       = offered - received - sock_drop (unaccounted; e.g. veth_drop)
# Caveat: on veth the receive NAPI runs on the sender's core (core 0), so the
# generator and the kernel receive path share a core; on a 2-core VM the
# numbers are a floor, not NIC figures. Zero-copy is not available on veth.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
SECS=${SECONDS_PER_RUN:-5}
SIZES=${SIZES:-"64 1000"}
SOURCES=${SOURCES:-"xdp-native xdp-generic afpacket"}
cargo build --release -q -p capture --examples
BIN=$CARGO_TARGET_DIR/release/examples
ID=$$
NA=ftbenchA$ID NB=ftbenchB$ID VA=ftba$ID VB=ftbb$ID
cleanup() { ip netns del "$NA" 2>/dev/null || true; ip netns del "$NB" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for ns in "$NA" "$NB"; do
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip link add "$VA" netns "$NA" type veth peer name "$VB" netns "$NB"
ip -n "$NA" link set "$VA" up
ip -n "$NB" link set "$VB" up
# GRO on the receiver gives the veth a NAPI ring, so XDP_TX from the
# generator can be delivered when no native XDP program is attached
# (generic / AF_PACKET). It does not merge plain UDP.
ip netns exec "$NB" ethtool -K "$VB" gro on >/dev/null

rxdrop() { ip -n "$NB" -s -j link show "$VB" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["dropped"])'; }
kv() { sed -n 's/.*\b'"$1"'=\([^ ]*\).*/\1/p' <<<"$2"; }

printf '%-12s %6s %12s %12s %10s %10s %10s %s\n' source bytes offered_pps rx_pps veth_drop sock_drop lost mode
for size in $SIZES; do
  for src in $SOURCES; do
    d0=$(rxdrop)
    ip netns exec "$NB" "$BIN/capture_count" --iface "$VB" --source "$src" --seconds $((SECS + 3)) --first-core 1 >/tmp/ft-cc-$ID.out 2>/tmp/ft-cc-$ID.err &
    cc=$!
    sleep 1.5
    g=$(ip netns exec "$NA" "$BIN/gen" --iface "$VA" --method xdp-live --size "$size" --flows 1024 --count 1000000000 --seconds "$SECS" --core 0)
    wait $cc || { cat /tmp/ft-cc-$ID.err >&2; exit 1; }
    c=$(grep RESULT /tmp/ft-cc-$ID.out)
    d1=$(rxdrop)
    sent=$(kv sent "$g"); secs=$(kv secs "$g"); recv=$(kv received "$c"); sd=$(kv kernel_dropped "$c")
    python3 - "$src" "$size" "$sent" "$secs" "$recv" "$sd" "$((d1 - d0))" "$(kv mode "$c")" <<'PY'
import sys
src, size, sent, secs, recv, sd, vd, mode = sys.argv[1:]
sent, secs, recv, sd, vd = int(sent), float(secs), int(recv), int(sd), int(vd)
print(f"{src:<12} {size:>6} {sent/secs:>12.0f} {recv/secs:>12.0f} {vd:>10} {sd:>10} {sent-recv-sd:>10} {mode}")
PY
  done
done
rm -f /tmp/ft-cc-$ID.out /tmp/ft-cc-$ID.err
