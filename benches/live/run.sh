#!/usr/bin/env bash
# Live capture benchmark of `flowtap run --iface` on a veth pair between two
# throw-away network namespaces (traffic never leaves them). Needs root,
# clang, iproute2, ethtool, python3.
#
# README
# ------
#   sudo benches/live/run.sh            # 5 s per cell
#   SECONDS_PER_RUN=10 SIZES="64 1000" SOURCES="xdp-native xdp-generic afpacket" sudo -E benches/live/run.sh
#   SOURCES="xdp-native dpdk-afpacket dpdk-afxdp" sudo -E benches/live/run.sh   # DPDK (builds --features dpdk)
#
# dpdk-afpacket / dpdk-afxdp: `--capture dpdk` on DPDK's net_af_packet /
# net_af_xdp virtual device bound to the veth (EAL with --no-huge: no
# hugepages are reserved on the test machine). They measure flowtap's DPDK
# path (EAL, mbufs, bursts) over a kernel socket, not a NIC's poll-mode
# driver: a virtual device says nothing about a real PMD's rate.
#
# For each frame size and each source (AF_XDP native, AF_XDP generic,
# AF_PACKET v3) it runs `flowtap run --iface` in namespace B with one worker
# on core 1, while capture/examples/gen (method xdp-live: BPF_F_TEST_XDP_LIVE_FRAMES
# + XDP_TX, 1024 UDP flows) sends into namespace A on core 0:
#   1. capture-only (`--capture-only`: frames counted and handed straight
#      back) at full speed: the capture ceiling;
#   2. the full flow pipeline at full speed;
#   3. the full pipeline paced at 90% of the ceiling: the target is zero drops.
# and prints per run: offered pps (gen), received pps (flowtap), drops per
# stage, and the full / capture-only ratio:
#   veth_drop = frames the receiving veth dropped (rx dropped delta: with XDP,
#               frames the program could not redirect to a full socket)
#   sock_drop = the socket's drops (XDP_STATISTICS rx_dropped, or
#               PACKET_STATISTICS tp_drops)         \  from flowtap's final
#   ring_full = AF_XDP RX ring full                  } `stats` event,
#   out_drop  = flow records the output queue dropped/  `capture` section
#   lost      = offered - received - the drops above (unaccounted)
#   (with native XDP, veth_drop already includes sock_drop and ring_full: a
#   frame the program cannot redirect to a full socket is a veth drop)
# The worker runs SCHED_FIFO (capture.sched_fifo = $FIFO, the appliance
# setting; FIFO=0 turns it off) and the generator under `chrt -f`, so other
# load on the machine (builds) does not decide the figures.
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
FIFO=${FIFO:-50}
FEATURES=()
case " $SOURCES " in *" dpdk-"*) FEATURES=(--features dpdk) ;; esac
cargo build --release -q -p capture --examples
cargo build --release -q -p engine --bin flowtap "${FEATURES[@]}"
GEN=$CARGO_TARGET_DIR/release/examples/gen
FLOWTAP=$CARGO_TARGET_DIR/release/flowtap
ID=$$
NA=ftbenchA$ID NB=ftbenchB$ID VA=ftba$ID VB=ftbb$ID
TMP=$(mktemp -d /tmp/ft-live-bench.XXXXXX)
cleanup() {
  ip netns del "$NA" 2>/dev/null || true
  ip netns del "$NB" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
printf '[capture]\nsched_fifo = %d\n' "$FIFO" >"$TMP/flowtap.toml"
# DPDK on the veth: one config per virtual device (64 MiB of ring, like the
# AF_PACKET source's default).
dpdk_cfg() { # NAME VDEV
  printf '[capture]\nsched_fifo = %d\nsource = "dpdk"\n[capture.dpdk]\neal_args = ["--no-huge", "--no-shconf", "--no-pci", "-m", "1024", "--log-level=lib.eal:error", "--vdev=%s"]\n' \
    "$FIFO" "$2" >"$TMP/$1.toml"
}
dpdk_cfg dpdk-afpacket "net_af_packet0,iface=$VB,blocksz=4096,framesz=2048,framecnt=32768"
dpdk_cfg dpdk-afxdp "net_af_xdp0,iface=$VB,start_queue=0,queue_count=1,busy_budget=0"
CHRT=()
[ "$FIFO" -gt 0 ] && CHRT=(chrt -f "$FIFO")
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

# run SRC SIZE MODE PPS -> prints one table row, sets RX_PPS
run() {
  local src=$1 size=$2 mode=$3 pps=$4 args=() gargs=() cfg=$TMP/flowtap.toml iface=$VB
  case $src in
    xdp-native) args=(--capture afxdp --xdp-mode native) ;;
    xdp-generic) args=(--capture afxdp --xdp-mode generic) ;;
    afpacket) args=(--capture afpacket) ;;
    dpdk-afpacket) cfg=$TMP/$src.toml iface=net_af_packet0 ;;
    dpdk-afxdp) cfg=$TMP/$src.toml iface=net_af_xdp0 ;;
  esac
  [ "$mode" = capture-only ] && args+=(--capture-only)
  [ "$pps" != max ] && gargs=(--pps "$pps")
  local out=$TMP/out.json d0 d1 g
  d0=$(rxdrop)
  # one worker, pinned to core 1 (its only allowed core); the generator owns core 0
  ip netns exec "$NB" taskset -c 1 "$FLOWTAP" run --iface "$iface" "${args[@]}" --workers 1 \
    --duration $((SECS + 3)) --config "$cfg" --output "$out" 2>"$TMP/ft.err" &
  local ft=$!
  for _ in $(seq 300); do grep -q "capturing on" "$TMP/ft.err" 2>/dev/null && break; sleep 0.1; done
  grep -q "capturing on" "$TMP/ft.err" || { echo "$src $size $mode: flowtap not capturing after 30 s:" >&2; cat "$TMP/ft.err" >&2; exit 1; }
  g=$(ip netns exec "$NA" "${CHRT[@]}" "$GEN" --iface "$VA" --method xdp-live --size "$size" --flows 1024 \
        --count 1000000000 --seconds "$SECS" --core 0 "${gargs[@]}")
  local rc=0
  wait $ft || rc=$?
  [ $rc = 0 ] || { echo "$src $size $mode: flowtap exited with status $rc:" >&2; cat "$TMP/ft.err" >&2; exit 1; }
  d1=$(rxdrop)
  RX_PPS=$(python3 - "$src" "$size" "$mode" "$(kv sent "$g")" "$(kv secs "$g")" "$((d1 - d0))" "$out" <<'PY'
import json, sys
src, size, mode, sent, secs, vd, out = sys.argv[1:]
sent, secs, vd = int(sent), float(secs), int(vd)
stats = [json.loads(l) for l in open(out) if '"event_type":"stats"' in l][-1]["stats"]
c = stats["capture"]
recv, d = c["received"], c["dropped"]
# DPDK: the port's own drops (no free descriptor / mbuf) stand for the socket's
if "nic" in c:
    d["socket"] = d["nic_missed"] + d["nic_no_mbuf"] + d["nic_errors"]
lost = sent - recv - max(vd, d["socket"] + d["rx_ring_full"])
rx = recv / secs
print(f"{src:<12} {size:>5} {mode:<13} {sent/secs:>11.0f} {rx:>11.0f} {vd:>10} {d['socket']:>10} "
      f"{d['rx_ring_full']:>10} {c['output_events_dropped']:>8} {lost:>9}  {c['mode']}", file=sys.stderr)
print(f"{rx:.0f}")
PY
)
}

printf '%-12s %5s %-13s %11s %11s %10s %10s %10s %8s %9s  %s\n' \
  source bytes mode offered_pps rx_pps veth_drop sock_drop ring_full out_drop lost how >&2
SUMMARY=()
for size in $SIZES; do
  for src in $SOURCES; do
    run "$src" "$size" capture-only max; ceil=$RX_PPS
    run "$src" "$size" full max; full=$RX_PPS
    paced=$(( ceil * 9 / 10 ))
    run "$src" "$size" "full@90%" "$paced"
    SUMMARY+=("$(python3 -c "import sys; c,f=$ceil,$full; print(f'{sys.argv[1]:<12} {sys.argv[2]:>5}  capture-only {c:>10} pps  full {f:>10} pps  full/capture-only {f/max(c,1):.2f}')" "$src" "$size")")
  done
done
echo >&2
printf '%s\n' "${SUMMARY[@]}" >&2
