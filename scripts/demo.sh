#!/usr/bin/env bash
# knockr end to end on this machine, no outside host needed.
# 1. The client: two toy doors listen on loopback addresses 127.0.1.1 and
#    127.0.1.2, knockr knocks both at once from one command, each door prints
#    the knocks as they arrive and opens its protected port, and knockr's
#    check confirms the port opened.
# 2. The server (as root, since capturing needs it): `knockr knockd` captures
#    on lo, the client knocks it, and the door's command runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet --bin knockr --bin knockr-knockd --example demo_door
knockr=$PWD/target/release/knockr

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Each door: the address, its protected port, then its knock sequence.
target/release/examples/demo_door 127.0.1.1 47022 47001 47002:udp 47003 & pids+=($!)
target/release/examples/demo_door 127.0.1.2 47022 47011:udp 47012:udp 47013 & pids+=($!)
sleep 0.5

cat > "$work/profiles.toml" <<'TOML'
[profiles.home-router]
host = "127.0.1.1"
sequence = ["47001", "47002:udp", "47003"]
check = 47022

[profiles.office-router]
host = "127.0.1.2"
sequence = ["47011:udp", "47012:udp", "47013"]
check = 47022

[profiles.everywhere]
include = ["home-router", "office-router"]
TOML

echo
echo "\$ knockr -c $work/profiles.toml -v -d 300ms everywhere"
status=0
"$knockr" -c "$work/profiles.toml" -v -d 300ms everywhere || status=$?
echo "knockr exited with status $status"
kill "${pids[@]}" 2>/dev/null || true
pids=()
[[ $status -eq 0 ]] || exit "$status"

if [[ $(id -u) -ne 0 ]]; then
  echo
  echo "(run as root to also see the server, knockr knockd, capture and open a door)"
  exit 0
fi

cat > "$work/knockd.toml" <<TOML
[[door]]
name = "demo"
sequence = ["47101", "47102:udp", "47103"]
seq_timeout = "5s"
tcp_flags = "syn"
start = ["/bin/sh", "-c", "echo door opened for %IP% > $work/opened"]
TOML
echo
echo "\$ knockr knockd -c $work/knockd.toml -i lo --state-file $work/state/knockd.state &"
"$knockr" knockd -c "$work/knockd.toml" -i lo --state-file "$work/state/knockd.state" & pids+=($!)
sleep 1  # the capture opens
echo "\$ knockr -p 47101,47102:udp,47103 127.0.0.1"
"$knockr" -p 47101,47102:udp,47103 127.0.0.1
for _ in $(seq 50); do [[ -s $work/opened ]] && break; sleep 0.1; done
echo "the door's command wrote: $(cat "$work/opened" 2>/dev/null || echo nothing)"
kill -TERM "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
pids=()
[[ -s $work/opened ]]
