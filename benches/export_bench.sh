#!/usr/bin/env bash
# PCAP export cost on W1: the throughput harness with no rule, with a rule
# selecting ~1% of the flows by HTTP host (13 hosts: 116 of 11,402 flows;
# every flow is a candidate and buffered until its protocol or event
# decides) and with a CIDR rule (117 flows, decided at flow start), and
# with an `everything` ring (every frame to a rotating shared file: the
# export MB/s ceiling).
# Runs alternate, ROUNDS times, REPEAT runs each; prints the medians.
#   benches/export_bench.sh [W1] (ROUNDS=5 REPEAT=7 WORKERS=1 DIR=/dev/shm/flowtap-export-bench)
set -euo pipefail
W1=${1:-/tmp/w1.pcap}
ROUNDS=${ROUNDS:-5}
REPEAT=${REPEAT:-7}
WORKERS=${WORKERS:-1}
DIR=${DIR:-/dev/shm/flowtap-export-bench}
T=${CARGO_TARGET_DIR:-target}/release/throughput
[ -x "$T" ] || cargo build --release -p benches --bin throughput
HOSTS='bravo83.net|bravo.yankee.static77.com|victor41.co.uk|foxtrot.victor15.net|cdn.india30.fr|shop.cdn62.fr|data.charlie.video31.co.uk|oscar.juliet17.io|foxtrot.assets62.net|bravo.juliet32.io|mail.data.charlie75.io|shop.whiskey.mail41.com|img.shop5.de'
CIDR='203.0.113.0/28'
declare -A runs replay mb
for _ in $(seq "$ROUNDS"); do
  for mode in none hosts cidr all; do
    case $mode in
      none) args=() ;;
      hosts) args=(--export-rule "name=hosts,http.host=$HOSTS" --export-dir "$DIR") ;;
      cidr) args=(--export-rule "name=cidr,dst_cidr=$CIDR" --export-dir "$DIR") ;;
      all) args=(--export-rule "name=everything,action=shared,rotate_bytes=64M" --export-dir "$DIR") ;;
    esac
    out=$("$T" --workers "$WORKERS" --repeat "$REPEAT" "${args[@]}" "$W1")
    mpps=$(sed -n 's/.*median [0-9.]* ms = \([0-9.]*\) Mpps.*/\1/p' <<<"$out" | head -1)
    runs[$mode]+="$mpps "
    alone=$(sed -n 's/.*replay alone.* = \([0-9.]*\) Mpps.*/\1/p' <<<"$out")
    [ -n "$alone" ] && replay[$mode]+="$alone "
    mbs=$(sed -n 's/.* = \([0-9.]*\) MB\/s.*/\1/p' <<<"$out")
    [ -n "$mbs" ] && mb[$mode]+="$mbs "
    if [ "$mode" != none ]; then
      echo "$mode: $mpps Mpps; $(grep 'export:' <<<"$out" | sed 's/^ *//')"
    else
      echo "$mode: $mpps Mpps"
    fi
  done
done
rm -rf "$DIR"
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(median <<<"${runs[none]}")
pct() { awk -v a="$1" -v b="$base" 'BEGIN {printf "%.1f", 100 * a / b}'; }
for mode in none hosts cidr all; do
  m=$(median <<<"${runs[$mode]}")
  line="median $mode: $m Mpps ($(pct "$m")% of no export)"
  if [ "$mode" != none ]; then
    r=$(median <<<"${replay[$mode]}")
    line+="; replay alone $r Mpps ($(pct "$r")%); export $(median <<<"${mb[$mode]}") MB/s"
  fi
  echo "$line"
done
