#!/usr/bin/env bash
# Installs the Debian packages bitnet.c builds with, if any is missing (needs root or sudo).
set -euo pipefail
PKGS="build-essential pkg-config libcjson-dev libpcre2-dev libmicrohttpd-dev"
missing=()
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
