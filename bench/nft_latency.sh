#!/usr/bin/env bash
# Knock to element in an nftables set (issue 16), live: one `knockr knockd`
# with two doors, the same but for how the knocker reaches the set
# `inet knockr knocked_v4` (loaded from `knockr nft rules --for-knockd`):
#   - "nftables": `[door.nftables]`, over netlink from knockd itself;
#   - "command":  `start = ["nft", "add", "element", "inet", "knockr",
#                 "knocked_v4", "{ %IP% timeout 1h }"]`, a process per knock.
# The knocks come from a second namespace over a veth pair (bench/netns.sh),
# KNOCKS per route (200 by default), the routes taking turns, each from its
# own source address; nothing leaves the namespaces. bench/nft_latency.py
# drives it and says what is measured. Prints p50/p99/max per route.
#
#   bench/nft_latency.sh                       (as root on Debian it installs nftables and python3)
#   ROUTES=command bench/nft_latency.sh        (one route only)
#   KNOCKR=target/debug/knockr bench/nft_latency.sh   (that binary, no release build)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "bench/nft_latency.sh needs root: it makes network namespaces" >&2
  exit 1
fi
KNOCKS=${KNOCKS:-200}
if ((KNOCKS < 1 || KNOCKS > 250)); then
  echo "KNOCKS is 1 to 250 (one source address per knock and route)" >&2
  exit 1
fi
scripts/setup.sh python3
if [[ -z ${KNOCKR:-} ]]; then
  cargo build --release --locked --quiet --bin knockr --bin knockr-knockd
  KNOCKR=target/release/knockr
fi
KNOCKR=$(realpath "$KNOCKR")
source bench/netns.sh
OUT=$(mktemp -d)
trap 'netns_down; rm -rf "$OUT"' EXIT
# 10.77.1.x knock the nftables door, 10.77.2.x the command door.
netns_up "$KNOCKS"
for i in $(seq 1 "$KNOCKS"); do echo "addr add 10.77.2.$i/16 dev $IF_CLI"; done | ip -n "$NS_CLI" -batch -

"$KNOCKR" nft rules --sequence 7000,8000:udp,9000 --protect 22 --for-knockd \
  | ip netns exec "$NS_SRV" nft -f -

echo "machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "knockr: $("$KNOCKR" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); $(nft --version)"
echo

export NS_SRV IF_SRV IF_CLI SRV_IP OUT KNOCKR KNOCKS
export ROUTES=${ROUTES:-nftables command}
# As bench/live.sh: the driver, knockd (and the nft it starts) at a raised
# priority (NICE, default -10), so that other work on the machine weighs
# less on both routes alike.
nice -n "${NICE:--10}" ip netns exec "$NS_CLI" python3 bench/nft_latency.py
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
