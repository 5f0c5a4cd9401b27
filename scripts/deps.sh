# Sourced by scripts/test.sh. Installs third-party test peers: trezorctl (Debian's
# python3-trezor 0.12.4) and python3-rlp for its ethereum commands. The Ledger JS clients
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
  # Integration tests refuse to skip when this is set: CI must really run them.
  export HWBRIDGE_REQUIRE_PEERS=1
}
