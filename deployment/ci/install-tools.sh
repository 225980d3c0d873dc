#!/usr/bin/env bash
# What the checks need from Debian besides Python and Node: Chromium for the browser tests and
# promtool (package `prometheus`) for the alert rules and dashboard queries. Installs only what
# is missing; as root, or through passwordless sudo on a CI agent.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo -n)
fi
"${as_root[@]}" apt-get update -qq
# --no-install-recommends: promtool is all that is used of `prometheus`; nothing is started.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
