#!/usr/bin/env bash
# Knock server offline replay: `knockr knockd --read` over a synthetic
# 1,000,000-packet capture (examples/gen_capture.rs: noise from 100,000
# sources, 20 valid knocks), timed against `tcpdump -r`, which reads the same
# file through the same libpcap and so is the floor for any libpcap reader.
# Then peak memory with 1,000,000 sources mid-sequence at once, under
# max_sources = 100,000 and 1,000,000. Files only: nothing is sent, nothing
# is captured on an interface.
#
#   bench/server.sh            (as root on Debian it installs hyperfine, tcpdump and time)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh hyperfine tcpdump time
cargo build --release --locked --quiet --bin knockr --bin knockr-knockd --example gen_capture
knockr=$PWD/target/release/knockr
gen=$PWD/target/release/examples/gen_capture
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "knockr: $("$knockr" --version); $(tcpdump --version 2>&1 | head -2 | paste -sd, | sed 's/,/, /')"
echo

packets=1000000 sources=100000 valid=20
"$gen" "$out/mixed.pcap" --packets $packets --sources $sources --valid $valid
# Packed into 1 s, well inside seq_timeout (5 s), so no attempt times out:
# the table has to hold every source at once, or drop some.
"$gen" "$out/distinct.pcap" --packets $packets --distinct-midsequence --seconds 1
echo

# config FILE MAX_SOURCES SEQUENCE: the benchmark's one door.
config() {
  cat >"$1" <<EOF
[knockd]
max_sources = $2

[[door]]
name = "ssh"
sequence = $3
seq_timeout = "5s"
tcp_flags = "syn"
start = ["/bin/true"]
EOF
}
ssh='["7000", "8000:udp", "9000"]'
config "$out/knockd.toml" 100000 "$ssh"
config "$out/knockd-1m.toml" 1000000 "$ssh"
# Ports the capture never uses: the replay reads and parses every packet but
# starts no attempt and logs nothing, which splits reading from matching+logging.
config "$out/never.toml" 100000 '["7001", "8001:udp", "9001"]'

replay="$knockr knockd --read $out/mixed.pcap --dry-run"
hyperfine --style none --warmup 1 --runs 10 --export-json "$out/replay.json" \
  -n "knockr --read --dry-run" "$replay -c $out/knockd.toml >/dev/null" \
  -n "knockr --read --dry-run --json" "$replay -c $out/knockd.toml --json >/dev/null" \
  -n "knockr, a door nothing knocks on" "$replay -c $out/never.toml >/dev/null" \
  -n "tcpdump -r FILE -w /dev/null" "tcpdump -r $out/mixed.pcap -w /dev/null 2>/dev/null" >/dev/null

# Not timed: did the replay find the knocks, and how much did it log?
$replay -c "$out/knockd.toml" >"$out/replay.log"
grep -c 'OPEN SESAME' "$out/replay.log" >"$out/opened" || true
wc -l <"$out/replay.log" >"$out/lines"

# mem NAME CONFIG: peak RSS of one replay of the distinct-sources capture.
# --json because text logs no evictions without -v; awk (not grep -c) counts,
# so pipefail still catches a failing knockr.
mem() {
  /usr/bin/time -o "$out/$1.time" -v "$knockr" knockd -c "$2" --read "$out/distinct.pcap" --dry-run --json |
    awk '/"event":"evicted"/ { n++ } END { print n + 0 }' >"$out/$1.dropped"
}
mem "never" "$out/never.toml"
mem "100k" "$out/knockd.toml"
mem "1m" "$out/knockd-1m.toml"

python3 - "$out" "$packets" "$valid" <<'PY'
import json, sys, os, statistics
out, packets, valid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
read = lambda name: open(os.path.join(out, name)).read().strip()
fmt = lambda s: f"{s*1000:.1f} ms" if s < 1 else f"{s:.3f} s"
print(f"Replay of {packets:,} packets (noise from 100,000 sources, {valid} valid knocks):\n")
print("| tool | median | min | max | stddev | runs | packets/s | CPU (user+sys, mean) |")
print("|---|---|---|---|---|---|---|---|")
median = {}
for r in json.load(open(os.path.join(out, "replay.json")))["results"]:
    t = r["times"]
    median[r["command"]] = m = statistics.median(t)
    cpu = r["user"] + r["system"]
    print(f"| {r['command']} | {fmt(m)} | {fmt(min(t))} | {fmt(max(t))} | {fmt(statistics.pstdev(t))} | {len(t)} | {packets/m:,.0f} | {fmt(cpu)} |")
floor = median["tcpdump -r FILE -w /dev/null"]
print()
for name in ["knockr --read --dry-run", "knockr --read --dry-run --json", "knockr, a door nothing knocks on"]:
    print(f"- {name} / tcpdump = {median[name]/floor:.2f}x (target: within 2x)")
print(f"- OPEN SESAME lines: {read('opened')} (valid knocks in the capture: {valid}); {int(read('lines')):,} log lines in all")

print(f"\nPeak memory, {packets:,} distinct sources each sending only the first knock, within 1 s:\n")
print("| max_sources | max RSS | wall (--json) | sequences dropped (table full) |")
print("|---|---|---|---|")
for name, label in [("never", "100000, a door nothing knocks on (nothing tracked)"), ("100k", "100000"), ("1m", "1000000")]:
    fields = dict(l.strip().split(": ", 1) for l in read(name + ".time").splitlines() if ": " in l)
    rss = int(fields["Maximum resident set size (kbytes)"]) / 1024
    wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"))))
    print(f"| {label} | {rss:.1f} MiB | {fmt(wall)} | {int(read(name + '.dropped')):,} |")
PY
