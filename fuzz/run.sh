#!/bin/sh
# Runs each fuzz target for at most RUNS executions or SECONDS seconds,
# whichever comes first, with memory and per-input time bounds, and prints
# libFuzzer's final figures. Needs the nightly toolchain and cargo-fuzz:
#
#     rustup toolchain install nightly && cargo install cargo-fuzz
#     python3 fuzz/seed.py                  # seed corpora into fuzz/corpus/
#     fuzz/run.sh [SECONDS] [RUNS] [TARGET...]
#
# FUZZ_ARGS adds libFuzzer flags, e.g. FUZZ_ARGS=-max_len=16384 to try
# inputs larger than the largest seed (libFuzzer's default limit).
# Builds in cargo-fuzz's default mode: optimised, with debug assertions and
# overflow checks, and AddressSanitizer. A crash, a leak, an input over
# -timeout seconds or over -rss_limit_mb stops the target and leaves the
# input in fuzz/artifacts/TARGET/; logs go to fuzz/logs/TARGET.log.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-300}
runs=${2:-100000000}
[ $# -gt 2 ] && shift 2 || set --
[ $# -gt 0 ] || set -- packet knockd_conf server_toml profiles sequence values netlink
mkdir -p fuzz/logs
status=0
for target in "$@"; do
    mkdir -p "fuzz/corpus/$target"
    log="fuzz/logs/$target.log"
    if cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
        -runs="$runs" -max_total_time="$seconds" -rss_limit_mb=512 -timeout=5 \
        -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log and fuzz/artifacts/$target/)"
        status=1
    fi
    # The last status line holds the final coverage (cov: edges, ft: features).
    last=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -1 | sed 's/ L: .*//; s/ MS: .*//')
    done=$(grep -E '^Done [0-9]+ runs' "$log" || true)
    peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    slowest=$(sed -n 's/^stat::slowest_unit_time_sec: *//p' "$log")
    files=$(find "fuzz/corpus/$target" -type f | wc -l)
    echo "$target: $result; $done; slowest input ${slowest} s; peak RSS ${peak} MB; corpus now $files files"
    echo "    $last"
done
exit $status
