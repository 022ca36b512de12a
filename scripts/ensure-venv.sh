#!/usr/bin/env bash
# Create the virtual environment if it is missing. Debian ships venv support in a separate package
# (python3-venv); when it is absent and we may install it, install it; otherwise say what to run.
set -euo pipefail
venv="${1:-.venv}"
[ -x "$venv/bin/python" ] && exit 0

python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Viva needs Python 3.11 or newer as python3; found: $("$python" --version 2>&1)" >&2
  exit 1
fi
if "$python" -m venv "$venv" 2>/dev/null; then
  exit 0
fi
rm -rf "$venv"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "python3 -m venv is missing its Debian package; installing python3-venv" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  exec "$python" -m venv "$venv"
fi
echo "python3 -m venv failed; on Debian run: sudo apt-get install python3-venv" >&2
exit 1
