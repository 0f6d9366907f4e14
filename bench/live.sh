#!/usr/bin/env bash
# Knock servers live, side by side: the C knockd and `knockr knockd` run in
# turn with the same knockd.conf in a network namespace; the traffic comes
# from a second namespace over a veth pair (bench/netns.sh), nothing leaves
# them. Prints three tables:
#   - last knock to command start (p50/p99 over LATENCY_KNOCKS knocks, 60 by default),
#   - 20 knockers interleaved: how many each server opens,
#   - for each flood in FLOODS ("cycle": FLOOD_SOURCES spoofed sources knocking
#     round and round; "first": FIRST_SOURCES spoofed sources sending one SYN
#     each), replayed with tcpreplay --pps at each of RATES for FLOOD_SECONDS:
#     whether a valid knock is still detected 3 times out of 3, with CPU, peak
#     memory and libpcap's drop counter.
#
#   bench/live.sh              (as root on Debian it installs knockd, tcpreplay and python3)
#   RATES="200000" FLOOD_SECONDS=5 bench/live.sh     (one rate, longer)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "bench/live.sh needs root: it makes network namespaces" >&2
  exit 1
fi
scripts/setup.sh knockd tcpreplay python3
cargo build --release --locked --quiet --bin knockr --bin knockr-knockd
source bench/netns.sh
OUT=$(mktemp -d)
trap 'netns_down; rm -rf "$OUT"' EXIT
netns_up 250

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "knockr: $(target/release/knockr --version) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); C knockd: Debian knockd $(dpkg-query -W -f='${Version}' knockd); tcpreplay $(tcpreplay --version 2>&1 | head -1 | awk '{print $3}')"
echo

export NS_SRV IF_SRV IF_CLI SRV_IP SRV_MAC CLI_MAC OUT
KNOCKD=$(command -v knockd || echo /usr/sbin/knockd)
export KNOCKR=$PWD/target/release/knockr KNOCKD
# Other work on the machine (compiles) starves the servers' capture threads
# and shows up as kernel drops: the driver, both servers and tcpreplay run at
# a raised priority (NICE, default -10; both servers alike).
nice -n "${NICE:--10}" ip netns exec "$NS_CLI" python3 bench/live.py
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
