#!/bin/sh
# Installs the Debian packages olmoc needs to build and test, if any are missing,
# and those given as arguments (valgrind for `make valgrind`). Idempotent and
# silent when everything is already there.
set -eu

# clang-19 and libclang-rt-19-dev (libFuzzer and the sanitizer runtimes): make fuzz.
# Arguments name more packages a target needs (make valgrind).
# libedit-dev, libncurses-dev, libbsd-dev: the chat's line editor, shared for olmoc and
# static (libedit.a, libtinfo.a, libbsd.a) for model binaries.
packages="cmake make gcc pkg-config llvm-19-dev libzstd-dev libcjson-dev libcmocka-dev libpcre2-dev
libedit-dev libncurses-dev libbsd-dev clang-19 libclang-rt-19-dev $*"

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
