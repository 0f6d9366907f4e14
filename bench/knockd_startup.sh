#!/usr/bin/env bash
# Start-up time of the knock server with big configs: from exec to its
# "listening:" line, for D doors x 32 knocks (D = 40, 200, 1000), on 32 x D
# distinct ports as far apart as 65,535 allows (port 1024 + 2n, TCP and UDP
# in turn, so no two ports merge into a range). The server runs with
# --dry-run and -v on `lo` inside a network namespace of its own (nothing is
# sent; it is stopped with SIGTERM once it listens, or killed at the bound).
#
#   bench/knockd_startup.sh [KNOCKR...]   (as root; default: this tree's release build)
#   BOUND=60 RUNS=5 bench/knockd_startup.sh /tmp/knockr-before target/release/knockr
set -euo pipefail
cd "$(dirname "$0")/.."
bound=${BOUND:-60}
runs=${RUNS:-5}
if [ $# -eq 0 ]; then
  cargo build --release --locked --quiet --bin knockr --bin knockr-knockd
  set -- "$PWD/target/release/knockr"
fi
out=$(mktemp -d)
ns=kr-startup-$$
ip netns add "$ns"
trap 'ip netns del "$ns"; rm -rf "$out"' EXIT
ip -n "$ns" link set lo up

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# gen DOORS > FILE
gen() {
  awk -v doors="$1" 'BEGIN {
    for (d = 0; d < doors; d++) {
      seq = ""
      for (k = 0; k < 32; k++) {
        n = d * 32 + k
        seq = seq sprintf("%s\"%d%s\"", k ? ", " : "", 1024 + 2 * n, n % 2 ? ":udp" : "")
      }
      printf "[[door]]\nname = \"d%d\"\nsequence = [%s]\nstart = [\"/bin/true\"]\n", d, seq
    }
  }'
}

# once KNOCKR CONFIG: seconds from exec to "listening:"; ">BOUND" when it
# was killed at the bound, "exited" when it ended without listening. What it
# said about its filter goes to stderr (cut to 160 characters).
once() {
  local start end line fd pid
  start=$(date +%s.%N)
  coproc SERVER { exec ip netns exec "$ns" timeout -s KILL "$bound" "$1" knockd -v --dry-run -i lo -c "$2" --state-file "$out/state" 2>&1; }
  pid=$SERVER_PID
  exec {fd}<&"${SERVER[0]}"
  while IFS= read -r line <&"$fd"; do
    case "$line" in
      *listening:*)
        end=$(date +%s.%N)
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        exec {fd}<&-
        echo "$(echo "$end - $start" | bc)"
        return
        ;;
      *"Kernel filter failed"*|*"userspace"*|*error*) echo "    (${line:0:160})" >&2 ;;
    esac
  done
  exec {fd}<&-
  local status=0
  wait "$pid" 2>/dev/null || status=$?
  if [ "$status" = 137 ]; then echo ">$bound"; else echo "exited($status)@$(echo "$(date +%s.%N) - $start" | bc)"; fi
}

for doors in 40 200 1000; do
  gen "$doors" >"$out/c$doors.toml"
  for knockr in "$@"; do
    times=()
    for _ in $(seq 1 "$runs"); do
      t=$(once "$knockr" "$out/c$doors.toml")
      times+=("$t")
      # A run that hit the bound will hit it again: one is enough.
      case "$t" in '>'*|exited*) break ;; esac
    done
    echo "$doors doors x 32 knocks, $knockr: ${times[*]}"
  done
done
