#!/usr/bin/env bash
# Installs what the build, the tests and the benchmarks need on a bare Debian 12 machine,
# idempotently (quick when already done). Sourced by scripts/test.sh; run it by itself on a
# new machine before scripts/bench.sh:
#   scripts/deps.sh
# apt (as root, or through sudo): gcc and libc6-dev (cgo: karalabe/hid, geth's crypto),
#   git and ca-certificates (go modules), nodejs and npm (Ledger's JS clients), Debian's
#   python3-trezor 0.12.4 and python3-rlp (trezorctl and its ethereum commands).
# npm: Ledger's JS clients pinned by emulator/ledger/testdata/js/package-lock.json and
#   @trezor/connect pinned by emulator/trezor/testdata/js/package-lock.json, and bitbox-api
#   pinned by emulator/bitbox02/testdata/js/package-lock.json, installed with
#   `npm ci` into the caches their tests read, so tests run offline.
# go: btcd and geth, pinned by tools/go.mod, built once into the shared cache the tests use
#   (internal/nodes; geth takes about 2.5 minutes cold on 2 cores, with progress).
# Go itself must be installed first (go.mod's version; Debian 12's golang-go is too old):
#   https://go.dev/dl, or any go ≥ 1.21 that fetches the toolchain go.mod names.

deps_say() { echo "deps: $*" >&2; }

deps_apt() {
  local need=()
  command -v gcc >/dev/null 2>&1 || need+=(gcc)
  [ -e /usr/include/stdio.h ] || need+=(libc6-dev)
  command -v git >/dev/null 2>&1 || need+=(git)
  [ -e /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  # Debian's python3-trezor installs the trezorlib module for /usr/bin/python3 (the tests
  # run `python3 -m trezorlib.cli.trezorctl`; no trezorctl script comes with it). A pyenv
  # or venv python3 earlier on PATH does not see it, so ask the system interpreter.
  { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import trezorlib' >/dev/null 2>&1; } || need+=(python3-trezor)
  { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import rlp' >/dev/null 2>&1; } || need+=(python3-rlp)
  [ ${#need[@]} -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  deps_say "installing ${need[*]} (apt)"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

deps_go() {
  if ! command -v go >/dev/null 2>&1; then
    deps_say "go is not installed: install the version in go.mod from https://go.dev/dl (Debian 12's golang-go is too old) and put it on PATH"
    return 1
  fi
}

# npm_into NAME DIR PROBE [NPM-ARGS...]: the npm packages pinned by DIR's package-lock.json,
# installed with `npm ci` into the cache directory internal/peers.NPM looks in
# (os.UserCacheDir()/hwbridge/NAME-<first 12 hex digits of the lock file's sha256>), unless
# PROBE (a package) is already there.
npm_into() {
  local name=$1 js=$2 probe=$3
  shift 3
  local sum cache
  sum=$(sha256sum "$js/package-lock.json" | cut -c1-12)
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/hwbridge/$name-$sum"
  [ -d "$cache/node_modules/$probe" ] && return 0
  deps_say "npm ci: $probe and its peers (pinned by $js/package-lock.json) into $cache"
  mkdir -p "$cache"
  cp "$js/package.json" "$js/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error "$@" >&2)
}

# The Ledger JS clients (emulator/ledger's tests) and @trezor/connect (emulator/trezor's).
deps_npm() {
  npm_into ledgeremu-js emulator/ledger/testdata/js @ledgerhq/hw-transport-node-speculos
  npm_into trezoremu-js emulator/trezor/testdata/js @trezor/connect --ignore-scripts
  npm_into bitbox02emu-js emulator/bitbox02/testdata/js bitbox-api
  npm_into ur-js ur/testdata/js @keystonehq/bc-ur-registry-btc
  npm_into keepkeyemu-js emulator/keepkey/testdata/js @shapeshiftoss/hdwallet-keepkey --ignore-scripts
}

# btcd and geth, built once per pinned version (progress on stderr).
deps_nodes() {
  deps_say "btcd and geth (tools/go.mod) into the shared cache"
  go run ./internal/nodes/cmd/buildnodes >/dev/null
}

deps_install() {
  deps_apt
  deps_go
  deps_npm
  deps_nodes
  # Integration tests refuse to skip when this is set: CI must really run them.
  export HWBRIDGE_REQUIRE_PEERS=1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  deps_install
fi
