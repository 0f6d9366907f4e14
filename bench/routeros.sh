#!/usr/bin/env bash
# RouterOS door action: knock-to-entry latency on loopback, p50/p99 over 200
# knocks, against the emulator of tests/it/support/routeros.rs, once over HTTP and
# once over HTTPS pinned by fingerprint. knockd captures live on lo (root);
# every packet goes to 127.0.0.1 from 127.78.x.y. See the example's header
# for exactly what is measured.
#
#   bench/routeros.sh [KNOCKS]      (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
knocks=${1:-200}
cargo build --release --locked --quiet --bin knockr --bin knockr-knockd --example routeros_latency
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "knockr: $(target/release/knockr --version), commit $(git rev-parse --short HEAD)"
for run in 1 2 3; do
  for proto in http https; do
    echo "run $run: $(target/release/examples/routeros_latency "$knocks" "$proto")"
  done
done
