#!/bin/sh
# Headless Chromium and its driver for examples/notes/tests/test_browser.py: Debian's
# packages, installed when missing (as root, or through sudo).
set -e
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium chromium-driver >/dev/null ||
    { $SUDO apt-get update -q >/dev/null &&
      $SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }
