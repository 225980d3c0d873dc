#!/usr/bin/env bash
# Fail on HIGH or CRITICAL vulnerabilities that have a fix, in the OS packages and the Python
# environment of a local image. Trivy runs from its own pinned image; its database is cached in
# a named volume between builds. Usage: deployment/ci/scan-image.sh <image>
set -euo pipefail
image="$1"
trivy_image="${TRIVY_IMAGE:-aquasec/trivy:0.58.1}"
mkdir -p artifacts
docker run --rm \
  -v /var/run/docker.sock:/var/run/docker.sock \
  -v studio-trivy-cache:/root/.cache/trivy \
  -v "$PWD/artifacts:/artifacts" \
  "$trivy_image" image \
  --scanners vuln --severity HIGH,CRITICAL --ignore-unfixed --no-progress \
  --format table --output /artifacts/trivy.txt \
  --exit-code 1 \
  "$image" || { cat artifacts/trivy.txt; exit 1; }
cat artifacts/trivy.txt
