#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, then
# runs every test. Tests that need root or network namespaces run as root;
# under CI=true they fail rather than skip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --locked --all-targets
