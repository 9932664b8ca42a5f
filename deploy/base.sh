#!/usr/bin/env bash
# Make a Debian base image from Debian's packages, for sites (and test
# machines) without an image registry: debootstrap into a folder, then
# `docker import`. The Dockerfile's RUNTIME_IMAGE build argument takes it.
#
#   deploy/base.sh [TAG]          default TAG: mongars-base/debian:bookworm-slim
#
# Environment: MIRROR (default: the first Debian mirror apt uses here, else
# http://deb.debian.org/debian), SUITE (bookworm), ARCH (the host's).
# Does nothing when TAG exists and was made from the same recipe.
set -euo pipefail

tag="${1:-mongars-base/debian:bookworm-slim}"
suite="${SUITE:-bookworm}"
arch="${ARCH:-$(dpkg --print-architecture)}"
# What the runtime image needs beyond minbase: CA certificates for outbound
# TLS with the system's trust, and the tools useradd comes from (passwd is in
# minbase).
include="ca-certificates"
recipe="debootstrap minbase $suite $arch include=$include v1"

if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | awk '{print $2}' | grep -v security | head -n1 || true)
  MIRROR="${MIRROR:-http://deb.debian.org/debian}"
fi

if docker image inspect "$tag" >/dev/null 2>&1 \
  && [ "$(docker image inspect -f '{{ index .Config.Labels "org.mongars.base.recipe" }}' "$tag")" = "$recipe" ]; then
  echo "$tag is up to date"
  exit 0
fi

command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/mongars-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrap $suite ($arch) from $MIRROR"
debootstrap --variant=minbase --arch="$arch" --include="$include" "$suite" "$rootfs" "$MIRROR" >/dev/null
# A slim image: no package lists, caches, docs or man pages.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log
# The mirror this was made from, so that apt works in the image as it did here.
echo "deb $MIRROR $suite main" > "$rootfs/etc/apt/sources.list"

tar -C "$rootfs" -c . | docker import \
  --change "LABEL org.mongars.base.recipe=\"$recipe\"" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  - "$tag" >/dev/null
echo "made $tag ($(docker image inspect -f '{{ .Size }}' "$tag" | numfmt --to=iec))"
