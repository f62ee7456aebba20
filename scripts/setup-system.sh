#!/usr/bin/env bash
# Debian packages vtome needs: ffmpeg's shared libraries for torchcodec's CPU decoder.
# Skipped when ffmpeg is already there or when we cannot install (not root, no apt).
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: ffmpeg not found; install it for torchcodec (PyAV is used otherwise)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq ffmpeg >/dev/null
