#!/usr/bin/env bash
# A Debian base image for the Dockerfile made on this machine, for machines that reach no container registry:
# debootstrap (Debian 12, python3 3.11 with venv) imported into podman or docker. It carries this machine's CA
# certificates and tells pip to use them, so the image's pip works behind the same TLS-inspecting proxy.
# Usage: docker/base-image.sh IMAGE (nothing is done when IMAGE exists). Needs root and debootstrap.
set -euo pipefail
image=${1:?usage: base-image.sh IMAGE}
docker=${DOCKER:-podman}
if "$docker" image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base-image.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# DEBIAN_MIRROR: another mirror than debootstrap's default
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" ${DEBIAN_MIRROR:-} >&2
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | "$docker" import --change 'CMD ["python3"]' - "$image"
