#!/usr/bin/env bash
# Client wall time: a 3-port sequence with a 100 ms delay to 1, 10 and 50
# hosts, knockr in one command vs the C `knock` client (Debian package knockd)
# in a shell loop, as users script it today; plus start-up time. The hosts
# are 50 addresses (10.77.2.x) of a server namespace joined to the client's
# by a veth pair (bench/netns.sh); both tools run in the client namespace.
# Nothing listens there, so the kernel answers each knock with a reset, and
# nothing leaves the namespaces.
#
#   bench/client.sh            (as root on Debian it installs hyperfine and knockd)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "bench/client.sh needs root: it makes network namespaces" >&2
  exit 1
fi
scripts/setup.sh hyperfine knockd
cargo build --release --locked --quiet --bin knockr
knockr=$PWD/target/release/knockr
source bench/netns.sh
out=$(mktemp -d)
trap 'netns_down; rm -rf "$out"' EXIT
netns_up 1
for i in $(seq 1 50); do echo "addr add 10.77.2.$i/16 dev $IF_SRV"; done | ip -n "$NS_SRV" -batch -

hosts() { for i in $(seq 1 "$1"); do printf '10.77.2.%d ' "$i"; done; }
ports=(47201 47202 47203)

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "knockr: $("$knockr" --version); C knock: Debian knockd $(dpkg-query -W -f='${Version}' knockd)"
echo

for n in 1 10 50; do
  h=$(hosts "$n")
  ip netns exec "$NS_CLI" hyperfine --style none --warmup 1 --runs 10 --export-json "$out/$n.json" \
    -n "$n|knockr, one command" "$knockr -q -d 100ms -p ${ports[0]},${ports[1]},${ports[2]} $h" \
    -n "$n|C knock in a shell loop" "for h in $h; do knock -d 100 \$h ${ports[*]}; done" >/dev/null
done
# The C client has no --version; with no arguments it prints its usage and exits 1.
hyperfine --style none -N -i --warmup 50 --runs 1000 --export-json "$out/startup.json" \
  -n "start-up|knockr --version" "$knockr --version" \
  -n "start-up|C knock (usage)" "knock" >/dev/null 2>&1

python3 - "$out" <<'PY'
import json, sys, os, statistics
out = sys.argv[1]
print("| hosts | tool | median | min | max | stddev | runs |")
print("|---|---|---|---|---|---|---|")
def row(r):
    t = r["times"]
    fmt = lambda s: f"{s*1000:.2f} ms" if s < 0.01 else f"{s:.3f} s"
    work, tool = r["command"].split("|", 1)
    print(f"| {work} | {tool} | {fmt(statistics.median(t))} | {fmt(min(t))} | {fmt(max(t))} | {fmt(statistics.pstdev(t))} | {len(t)} |")
for name in ["1", "10", "50", "startup"]:
    path = os.path.join(out, name + ".json")
    if os.path.exists(path):
        for r in json.load(open(path))["results"]:
            row(r)
one = statistics.median(json.load(open(os.path.join(out, "1.json")))["results"][0]["times"])
fifty = statistics.median(json.load(open(os.path.join(out, "50.json")))["results"][0]["times"])
print(f"\nknockr: 50 hosts / 1 host = {fifty/one:.3f}x (target <= 1.1x); floor (3-1) x 100 ms = 0.200 s")
PY
