#!/usr/bin/env bash
# Makes sure this machine can build and test knockr; installs what is missing
# when run as root on Debian/Ubuntu, and says what to do otherwise.
#   scripts/setup.sh [EXTRA-DEBIAN-PACKAGE...]   (the benchmarks add theirs)
set -euo pipefail

if ! command -v cargo >/dev/null; then
  echo "knockr needs a Rust toolchain (cargo, Rust 1.88 or newer): install it with rustup or your package manager." >&2
  exit 1
fi

# Debian packages the build and the tests use, plus any the caller names:
# libpcap-dev to build the server (feature `server`), iproute2 for the live
# tests' network namespaces, openssh-client for the `knockr connect` test,
# and the tools the interop tests run against knockr: the C knock/knockd
# (package knockd), hping3 and tcpreplay; logrotate runs contrib/logrotate/knockr;
# nftables gives `nft`, which checks and loads the rulesets of `knockr nft rules`;
# and systemd's systemd-analyze verifies the units in contrib/.
packages=(libpcap-dev iproute2 openssh-client knockd hping3 tcpreplay logrotate systemd nftables "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "knockr's tools need these packages: ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
