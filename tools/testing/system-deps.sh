#!/usr/bin/env bash
# What the tests need from the operating system, installed when missing: Chromium (the
# dashboard's real-browser tests drive /usr/bin/chromium through playwright-core) and faketime
# (tests that run a process on a skewed clock). Run by `npm test` (its `pretest` script) and by
# .ci/run. When everything is there it only checks two paths and exits: no apt, no network.
#
# As root on Debian/Ubuntu it runs `apt-get update` once, then `apt-get install -y` of the
# missing packages. Otherwise it names the missing packages and the command to install them,
# and exits 1 (SETTLEMENT_SKIP_SYSTEM_DEPS=1 skips the check, e.g. to run unit tests only).
set -euo pipefail

if [ "${SETTLEMENT_SKIP_SYSTEM_DEPS:-}" = "1" ]; then
  exit 0
fi

# package → the file it provides, which is what the tests use.
declare -A PROVIDES=([chromium]=/usr/bin/chromium [faketime]=/usr/bin/faketime)
missing=()
for pkg in chromium faketime; do
  [ -x "${PROVIDES[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

say() { printf '[system-deps] %s\n' "$*" >&2; }
say "missing for the tests: ${missing[*]}"

if [ "$(id -u)" != "0" ]; then
  say "not running as root, so not installing them. Install them, then run npm test again:"
  say "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  say "(or set SETTLEMENT_SKIP_SYSTEM_DEPS=1 to run without them: the browser and clock tests will fail)"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get on this machine: install ${missing[*]} with its package manager (Chromium at /usr/bin/chromium), then run npm test again"
  exit 1
fi

say "installing ${missing[*]} (apt-get update, then apt-get install -y)"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
  say "apt-get update failed: check the network or the apt sources, then run npm test again"
  exit 1
fi
if ! apt-get install -y -qq "${missing[@]}" >/dev/null; then
  say "apt-get install ${missing[*]} failed (see above)"
  exit 1
fi
for pkg in "${missing[@]}"; do
  if [ ! -x "${PROVIDES[$pkg]}" ]; then
    say "installed $pkg but ${PROVIDES[$pkg]} is still missing"
    exit 1
  fi
done
say "installed ${missing[*]}"
