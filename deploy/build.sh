#!/usr/bin/env bash
# Build the monGARS image.
#
#   deploy/build.sh                       multi-architecture (linux/amd64 and
#                                         linux/arm64) with docker buildx, from
#                                         source, where registries are reachable
#   deploy/build.sh --offline [--binary PATH]
#                                         air-gapped: a base made here from
#                                         Debian's packages (deploy/base.sh) and
#                                         a binary built on this host
#
# Options: --tag TAG (default mongars:<version>), --push (buildx only),
# --binary PATH (offline: use this binary instead of building one).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
tag="mongars:${version}"
offline=false
push=false
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --offline) offline=true ;;
    --push) push=true ;;
    --tag) tag="$2"; shift ;;
    --binary) binary="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
labels=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision")

if ! $offline; then
  docker buildx version >/dev/null 2>&1 || {
    echo "docker buildx is not installed: use --offline on this machine" >&2
    exit 1
  }
  out=(--load)
  $push && out=(--push)
  # --load takes one platform at a time; --push takes both.
  platforms="linux/amd64,linux/arm64"
  $push || platforms="linux/$(docker version -f '{{ .Server.Arch }}')"
  exec docker buildx build --platform "$platforms" -f deploy/Dockerfile \
    "${labels[@]}" -t "$tag" "${out[@]}" .
fi

base="mongars-base/debian:bookworm-slim"
deploy/base.sh "$base"
stage=$(mktemp -d "${TMPDIR:-/tmp}/mongars-image.XXXXXX")
trap 'rm -rf "$stage"' EXIT
if [ -z "$binary" ]; then
  cargo build --release --locked -p mongars
  binary=target/release/mongars
fi
# Debug information stays on the host; the image gets the code.
objcopy --strip-debug "$binary" "$stage/mongars"
chmod 0755 "$stage/mongars"
start=$(date +%s)
docker build -q -f deploy/Dockerfile --target prebuilt \
  --build-arg "RUNTIME_IMAGE=$base" "${labels[@]}" -t "$tag" "$stage" >/dev/null
echo "built $tag in $(( $(date +%s) - start )) s: $(docker image inspect -f '{{ .Size }}' "$tag" | numfmt --to=iec)"
