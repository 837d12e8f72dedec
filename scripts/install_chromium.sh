#!/bin/sh
# Install Debian's chromium for the `browser` test suite (tests/browser/).
#
# Playwright's own browser download (`playwright install`) cannot work on the CI
# machines (no access to its CDN), so the suite drives the distribution's
# chromium through Playwright's `executable_path`. Idempotent: does nothing when
# /usr/bin/chromium is already there. Needs root (apt-get).
set -eu

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install_chromium: $CHROMIUM already present: $("$CHROMIUM" --version 2>/dev/null || echo unknown version)"
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    echo "install_chromium: $CHROMIUM is missing and this script needs root for apt-get" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium fonts-dejavu-core

if [ ! -x "$CHROMIUM" ]; then
    echo "install_chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "install_chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
