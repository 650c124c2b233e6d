#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh -- build arenad and run it in the foreground, from a fresh Debian 12.
#
#   ./run.sh [ARENAD_OPTIONS...]   install what is missing, build into build/,
#                                  run build/bin/arenad --foreground
#   ./run.sh demo                  (not implemented yet)
#
# As root arenad listens on its embedded default (/run/arenad/arenad.sock,
# or $ARENAD_SOCKET); otherwise on ./run/arenad.sock. Ctrl-C stops it cleanly:
# the script execs arenad, so the signal goes straight to it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

usage() {
    cat <<'EOF'
Usage: ./run.sh [ARENAD_OPTIONS...]
       ./run.sh demo

Installs the build dependencies that are missing (Debian 12, apt-get), builds
into build/, and runs build/bin/arenad in the foreground. ARENAD_OPTIONS go to
arenad as they are, e.g. ./run.sh --budget 2G --log-level debug.
Stop it with Ctrl-C.
EOF
}

# ---- subcommands ------------------------------------------------------------
case "${1:-}" in
-h | --help)
    usage
    exit 0
    ;;
demo)
    # Place for the future `./run.sh demo` (a generator handing memory to a
    # simulator through arenad). Not implemented yet.
    echo "./run.sh demo: not implemented yet" >&2
    exit 2
    ;;
"" | -*) ;;
*)
    echo "./run.sh: unknown subcommand '$1'" >&2
    usage >&2
    exit 2
    ;;
esac

# ---- dependencies -----------------------------------------------------------
PACKAGES=(build-essential cmake pkg-config libuv1-dev libprotobuf-c-dev protobuf-c-compiler
    check libsubunit-dev libsystemd-dev)
missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]} > 0)); then
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        SUDO=(sudo)
    fi
    echo "run.sh: installing ${missing[*]}" >&2
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}"
fi

# ---- build ------------------------------------------------------------------
cmake -B build -S . -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)" --target arenad arenactl

# ---- run --------------------------------------------------------------------
if [[ $(id -u) -eq 0 ]]; then
    socket=${ARENAD_SOCKET:-/run/arenad/arenad.sock}
else
    socket=${ARENAD_SOCKET:-$PWD/run/arenad.sock}
    export ARENAD_SOCKET=$socket
fi
mkdir -p "$(dirname "$socket")"

cat <<EOF
arenad: listening on $socket (Ctrl-C stops it)
try, from another terminal:
    ARENAD_SOCKET=$socket build/bin/arenactl status
EOF
exec build/bin/arenad --foreground "$@"
