#!/usr/bin/env bash
# Installs Debian's chromium for tests/access_matrix_browser.rs, which opens
# the access matrix's HTML page headless (no network, a fresh profile) to
# check that its own script ran, and takes the screenshot CI keeps as
# target/access-matrix.png. Does nothing when chromium is already on PATH.
exec bash "$(dirname "$0")/apt-install.sh" chromium=chromium
