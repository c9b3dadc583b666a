#!/usr/bin/env bash
# pycocoevalcap's PTB tokenizer and METEOR run Java. Install a headless JRE when none is on PATH.
set -euo pipefail
if command -v java >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "ensure-java: installing default-jre-headless with apt-get" >&2
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq default-jre-headless >/dev/null
  command -v java >/dev/null 2>&1 && exit 0
fi
echo "ensure-java: no 'java' on PATH; install a Java runtime (e.g. default-jre-headless) for METEOR and the PTB tokenizer" >&2
exit 1
