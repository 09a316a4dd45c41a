#!/usr/bin/env bash
# Build the Dockerfile's base image from Debian packages, for machines that cannot pull from a
# container registry (air-gapped CI): debootstrap a minimal bookworm with Python 3.11, its venv
# module and the CA certificates, and import it as an image. Skipped when the image exists.
#
#   deploy/build-base-image.sh [IMAGE] [MIRROR]
#
# IMAGE defaults to decisiontrail-base:bookworm, MIRROR to http://deb.debian.org/debian.
# Needs root (debootstrap) and a running Docker daemon.
set -euo pipefail
image="${1:-decisiontrail-base:bookworm}"
mirror="${2:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists"
  exit 0
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$root" "$mirror"
# A smaller image: no apt lists or caches, no documentation.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$image"
echo "built base image $image"
