#!/usr/bin/env bash
# How long a knock waits to resolve its host while DNS never answers
# (BENCHMARKS.md, "Client: resolving with a silent DNS server"). As root.
#
#   bench/resolve.sh KNOCKR [OLD_KNOCKR]
#
# One network namespace with a veth pair inside it (10.77.9.2/24), its own
# /etc/hosts (`10.77.9.1 gw1`) and resolv.conf pointing at 127.0.0.53, where a
# UDP socket reads every question and answers none. `--dry-run` resolves and
# sends nothing; nothing leaves the namespace. Each row: 5 runs, median,
# min and max wall time.
set -euo pipefail

NEW=${1:?usage: bench/resolve.sh KNOCKR [OLD_KNOCKR]}
OLD=${2:-}
NS="kb-res-$$"
RUNS=5

down() {
  [ -n "${SILENT:-}" ] && kill "$SILENT" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "/etc/netns/$NS"
}
trap down EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add kbr0 type veth peer name kbr1
ip -n "$NS" addr add 10.77.9.2/24 dev kbr0
ip -n "$NS" link set kbr0 up
ip -n "$NS" link set kbr1 up
mkdir -p "/etc/netns/$NS"
printf '127.0.0.1 localhost\n10.77.9.1 gw1\n' > "/etc/netns/$NS/hosts"
printf 'nameserver 127.0.0.53\n' > "/etc/netns/$NS/resolv.conf"
ip netns exec "$NS" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.53", 53))
s.settimeout(1)
end = time.time() + 900
while time.time() < end:
    try:
        s.recv(512)
    except socket.timeout:
        pass
' &
SILENT=$!
sleep 0.5

# row LABEL COMMAND...: the median, min and max of RUNS runs, in seconds.
row() {
  local label=$1
  shift
  local times=()
  for _ in $(seq "$RUNS"); do
    local start end
    start=$(date +%s.%N)
    ip netns exec "$NS" "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v label="$label" -v runs="$RUNS" '
    { t[NR] = $1 }
    END { printf "| %s | %.3f s | %.3f s | %.3f s | %d |\n", label, t[int((NR + 1) / 2)], t[1], t[NR], runs }'
}

echo "| case | median | min | max | runs |"
echo "|---|---|---|---|---|"
for bin in ${OLD:+"$OLD"} "$NEW"; do
  name=knockr
  [ "$bin" = "$OLD" ] && name="knockr before"
  row "$name: hosts-file name" "$bin" --dry-run -p 7000 gw1
  row "$name: hosts-file name, -4" "$bin" --dry-run -4 -p 7000 gw1
  row "$name: name only DNS could answer" "$bin" --dry-run -p 7000 far1
done
row "getent ahosts: hosts-file name" getent ahosts gw1
if command -v knock >/dev/null; then row "C knock: hosts-file name" knock -d 0 gw1 7000; fi
