#!/usr/bin/env bash
# Time-based doors in the knock server's offline replay: the cost of a door
# whose sequences roll every 30 s, with 1, 100 and 1000 clients (each client
# is 3 matcher doors for the window t-1..t+1), next to the fixed door alone.
# The capture is examples/gen_capture.rs's noise (1,000,000 packets from
# 100,000 sources over 600 s of capture time, so 20 step boundaries), the same
# kind bench/server.sh uses. Files only: nothing is sent or captured live.
#
#   bench/otp.sh            (as root on Debian it installs hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh hyperfine
cargo build --release --locked --quiet --bin knockr --bin knockr-knockd --example gen_capture
knockr=$PWD/target/release/knockr
gen=$PWD/target/release/examples/gen_capture
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "knockr: $("$knockr" --version)"
echo

packets=1000000
"$gen" "$out/mixed.pcap" --packets $packets --sources 100000 --valid 20 --seconds 600
echo

fixed='[[door]]
name = "ssh"
sequence = ["7000", "8000:udp", "9000"]
seq_timeout = "5s"
tcp_flags = "syn"
start = ["/bin/true"]'
echo "$fixed" >"$out/fixed.toml"
# otp CLIENTS: the fixed door plus a time-based door with that many clients.
otp() {
  {
    echo "$fixed"
    printf '[[door]]\nname = "team"\notp_ports = "10000-60000"\notp_protocols = ["tcp", "udp"]\n'
    printf 'tcp_flags = "syn"\nstart = ["/bin/true"]\n'
    for i in $(seq 1 "$1"); do
      (umask 077; "$knockr" secret new | sed -n 's/^base32: //p' >"$out/c$i.secret")
      printf '[[door.client]]\nname = "c%s"\nsecret_file = "%s"\n' "$i" "$out/c$i.secret"
    done
  } >"$out/otp$1.toml"
}
otp 1
otp 100
otp 1000

replay="$knockr knockd --read $out/mixed.pcap --dry-run"
hyperfine --style none --warmup 1 --runs 5 --export-json "$out/replay.json" \
  -n "fixed door only" "$replay -c $out/fixed.toml >/dev/null" \
  -n "+ time-based door, 1 client" "$replay -c $out/otp1.toml >/dev/null" \
  -n "+ time-based door, 100 clients" "$replay -c $out/otp100.toml >/dev/null" \
  -n "+ time-based door, 1000 clients" "$replay -c $out/otp1000.toml >/dev/null" >/dev/null

# Not timed: the fixed door still finds its 20 knocks next to the rolling one.
for c in 1 100 1000; do
  echo "$c client(s): $($replay -c "$out/otp$c.toml" | grep -c 'ssh: OPEN SESAME' || true) of 20 valid knocks found"
done
echo

python3 - "$out" "$packets" <<'PY'
import json, sys, os, statistics
out, packets = sys.argv[1], int(sys.argv[2])
fmt = lambda s: f"{s*1000:.1f} ms" if s < 1 else f"{s:.3f} s"
print("| configuration | median | min | max | stddev | runs | packets/s |")
print("|---|---|---|---|---|---|---|")
for r in json.load(open(os.path.join(out, "replay.json")))["results"]:
    t = r["times"]
    m = statistics.median(t)
    print(f"| {r['command']} | {fmt(m)} | {fmt(min(t))} | {fmt(max(t))} | {fmt(statistics.pstdev(t))} | {len(t)} | {packets/m:,.0f} |")
PY
