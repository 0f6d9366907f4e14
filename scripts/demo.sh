#!/usr/bin/env bash
# knockr end to end on this machine, no outside host needed: two toy doors
# listen on loopback addresses 127.0.1.1 and 127.0.1.2, knockr knocks both at
# once from one command, each door prints the knocks as they arrive and opens
# its protected port, and knockr's check confirms the port opened.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet --bin knockr --example demo_door

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
target/release/knockr -c "$work/profiles.toml" -v -d 300ms everywhere || status=$?
echo "knockr exited with status $status"
exit "$status"
