#!/usr/bin/env bash
# System packages the tests need, installed where this machine can (Debian, as root):
# the MariaDB client headers and pkg-config (the test extras build mysqlclient), and
# Debian's Chromium with its driver (the UI view is checked in a real headless browser).
set -euo pipefail

can_apt() { command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; }
apt_install() {
    apt-get install -y -q "$@" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}

if ! pkg-config --exists libmariadb 2>/dev/null && ! pkg-config --exists mysqlclient 2>/dev/null; then
    if can_apt; then
        echo "installing the MariaDB client headers (for mysqlclient)..."
        apt_install pkg-config libmariadb-dev
    else
        echo "mysqlclient needs the MariaDB/MySQL client headers: install pkg-config and" \
            "libmariadb-dev (Debian/Ubuntu) or mysql-client (Homebrew) first" >&2
        exit 1
    fi
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if can_apt; then
        echo "installing Chromium and its driver (for the UI view's browser test)..."
        DEBIAN_FRONTEND=noninteractive apt_install chromium chromium-driver
    else
        echo "the UI view's browser test needs chromium and chromedriver on PATH" >&2
    fi
fi
