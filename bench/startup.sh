#!/usr/bin/env bash
# Start-up cost in instructions (valgrind's callgrind: stable on a noisy
# machine, unlike times): `knockr --version`, a 3-port UDP knock on loopback
# (127.0.0.1, closed ports: the kernel drops them, nothing leaves the
# machine) as a whole run and until its first knock is sent, the server
# half's `--version`, next to the C client's `knock -V` and /bin/true.
#
#   bench/startup.sh            (on Debian it installs valgrind and knockd)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh valgrind knockd
cargo build --release --locked --quiet --bin knockr --bin knockr-knockd
knockr=$PWD/target/release/knockr
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$@" >/dev/null 2>"$out/err" || true
  awk '/Collected/ {gsub(",", "", $4); print $4}' "$out/err"
}
# The instructions until the first knock leaves: callgrind dumps a part just
# before each call of glibc's send() (how a knock goes out on its connected
# UDP socket); the first part is everything before the first knock.
until_first_send() {
  rm -f "$out"/first*
  valgrind --tool=callgrind --callgrind-out-file="$out/first" --dump-before=send "$@" \
    >/dev/null 2>"$out/err" || true
  awk '/^totals:/ {print $2}' "$out/first.1"
}
knock="$knockr -q -d 0s -p 47301:udp,47302:udp,47303:udp 127.0.0.1"
echo "machine: $(nproc) cores, $(uname -sr); knockr $("$knockr" --version) ($(git rev-parse --short HEAD))"
printf '| command | instructions |\n|---|---|\n'
for cmd in "$knockr --version" \
           "$knock" \
           "$PWD/target/release/knockr-knockd --version" \
           "knock -V" \
           "/bin/true"; do
  # shellcheck disable=SC2086
  printf '| `%s` | %s |\n' "${cmd//$PWD\//}" "$(count $cmd)"
  if [ "$cmd" = "$knock" ]; then
    # shellcheck disable=SC2086
    printf '| `%s`, until its first knock is sent | %s |\n' "${cmd//$PWD\//}" "$(until_first_send $cmd)"
  fi
done
