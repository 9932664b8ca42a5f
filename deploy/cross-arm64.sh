#!/usr/bin/env bash
# Cross-compile monGARS for 64-bit ARM (Raspberry Pi 4/5, Jetson) on an
# x86-64 Debian or Ubuntu machine, without downloading a toolchain: Debian's
# rustc-web ships the aarch64 standard library (libstd-rust-web-dev:arm64),
# and gcc-aarch64-linux-gnu links and builds llama.cpp. Then the binary is
# checked: `file` must say aarch64, and `--version` and `doctor` must run
# under qemu-aarch64.
#
#   deploy/cross-arm64.sh [--profile release|dev|arm64-check]   prints the binary's path
#
# release (the default) is the binary to ship; arm64-check, quick to build and
# slow to run, is what the test suite builds to check the toolchain.
#
# The apt packages are installed when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

target=aarch64-unknown-linux-gnu
packages=(rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
  libc6-dev-arm64-cross libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64 qemu-user file)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's compiler, whose standard library includes aarch64; its own
# target folder, since its builds do not mix with the default toolchain's.
# NEON is every 64-bit ARM's; "native" would name the build machine's CPU.
export RUSTC=/usr/bin/rustc
export RUSTFLAGS="-C target-feature=+neon"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu"
# llama.cpp is built by CMake in a build type of its own: Release, unless
# the binary is only checked, where an unoptimised build (a third of the CPU
# time; nothing under qemu runs the model) shortens the suite.
if [ "$profile" = arm64-check ]; then export LLAMA_LIB_PROFILE=Debug; fi
cargo build --locked --profile "$profile" --target "$target" -p mongars \
  --target-dir target/arm64 >&2
dir=$profile
[ "$profile" = dev ] && dir=debug
binary="target/arm64/$target/$dir/mongars"

file "$binary" | grep -q "ARM aarch64" || { file "$binary" >&2; echo "not an aarch64 binary" >&2; exit 1; }
# Under qemu the loader and the C library must come from one package: the
# multiarch libc6:arm64 in / (the cross toolchain's loader in
# /usr/aarch64-linux-gnu would pick up the multiarch libraries through the
# host's ld.so.cache, and a loader and libc of different builds spin forever
# on their first shared lock).
run() { qemu-aarch64 -L / "$binary" "$@"; }
run --version >&2
# doctor reports problems of this machine's setup (exit 1), but must run; it
# runs from the checkout so that it finds the models `make models` fetched.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
set +e
MONGARS_DATA_DIR="$scratch" timeout "${DOCTOR_TIMEOUT:-300}" qemu-aarch64 -L / "$binary" doctor >&2
status=$?
set -e
[ "$status" -ne 124 ] || { echo "doctor did not finish under qemu within ${DOCTOR_TIMEOUT:-300} s" >&2; exit 1; }
[ "$status" -le 1 ] || { echo "doctor failed under qemu (exit $status)" >&2; exit 1; }
echo "$binary"
