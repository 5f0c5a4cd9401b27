# Sourced by scripts/test.sh. Installs third-party test peers: trezorctl (Debian's
# python3-trezor 0.12.4) and python3-rlp for its ethereum commands.
deps_install() {
  local need=()
  command -v trezorctl >/dev/null 2>&1 || need+=(python3-trezor)
  python3 -c 'import rlp' >/dev/null 2>&1 || need+=(python3-rlp)
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
