# Sourced by scripts/test.sh. Installs third-party test peers: trezorctl (Debian's
# python3-trezor 0.12.4) and python3-rlp for its ethereum commands; @trezor/connect (npm,
# pinned by emulator/trezor/testdata/js/package-lock.json) into the cache its test reads, so
# that the test runs offline. The Ledger JS clients
# come from npm (testdata/js/package-lock.json), installed by their Go test into a cache;
# btcd and geth are built by internal/nodes from the pinned versions in tools/go.mod.
deps_install() {
  local need=()
  # Debian's python3-trezor installs the trezorlib module for /usr/bin/python3 (the tests
  # run `python3 -m trezorlib.cli.trezorctl`; no trezorctl script comes with it). A pyenv
  # or venv python3 earlier on PATH does not see it, so ask the system interpreter.
  /usr/bin/python3 -c 'import trezorlib' >/dev/null 2>&1 || need+=(python3-trezor)
  /usr/bin/python3 -c 'import rlp' >/dev/null 2>&1 || need+=(python3-rlp)
  if [ ${#need[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "installing ${need[*]} (apt)" >&2
    $sudo apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  deps_trezor_connect
  # Integration tests refuse to skip when this is set: CI must really run them.
  export HWBRIDGE_REQUIRE_PEERS=1
}

# deps_trezor_connect runs `npm ci` for emulator/trezor's TestTrezorConnect into the cache
# directory the test looks in: os.UserCacheDir()/hwbridge/trezoremu-js-<first 12 hex digits
# of sha256(package-lock.json)>.
deps_trezor_connect() {
  local js=emulator/trezor/testdata/js
  command -v npm >/dev/null 2>&1 || return 0 # the test then fails under HWBRIDGE_REQUIRE_PEERS
  local h cache
  h=$(sha256sum "$js/package-lock.json" | cut -c1-12)
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/hwbridge/trezoremu-js-$h"
  [ -d "$cache/node_modules/@trezor/connect" ] && return 0
  echo "installing @trezor/connect (npm ci, pinned)" >&2
  mkdir -p "$cache"
  cp "$js/package.json" "$js/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
}
