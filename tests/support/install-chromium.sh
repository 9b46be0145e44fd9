#!/usr/bin/env bash
# Installs Debian's chromium for tests/access_matrix_browser.rs, which opens
# the access matrix's HTML page headless (no network, a fresh profile) to
# check that its own script ran, and takes the screenshot CI keeps as
# target/access-matrix.png. Does nothing when chromium is already on PATH.
# Run by .ci/run; a developer on Debian or Ubuntu can run it too.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-chromium.sh: chromium is not installed, and installing it needs root (or sudo)" >&2
    exit 1
fi

"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends chromium

command -v chromium >/dev/null 2>&1 || {
    echo "install-chromium.sh: chromium is still not on PATH after the install" >&2
    exit 1
}
