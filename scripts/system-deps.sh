#!/usr/bin/env bash
# The test extras build mysqlclient (for the MariaDB/MySQL tests), which needs the MariaDB
# client headers and pkg-config. Install them where this machine can (Debian, as root).
set -euo pipefail
if pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null; then
    exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing the MariaDB client headers (for mysqlclient)..."
    apt-get install -y -q pkg-config libmariadb-dev >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q pkg-config libmariadb-dev >/dev/null; }
else
    echo "mysqlclient needs the MariaDB/MySQL client headers: install pkg-config and" \
        "libmariadb-dev (Debian/Ubuntu) or mysql-client (Homebrew) first" >&2
    exit 1
fi
