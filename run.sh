#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh -- build arenad and run it in the foreground, from a fresh Debian 12.
#
#   ./run.sh [ARENAD_OPTIONS...]   install what is missing, build into build/,
#                                  run build/bin/arenad --foreground
#   ./run.sh demo [DEMO_OPTIONS]   the generator/simulator story, on the system
#                                  allocator and then through a private arenad
#
# As root arenad listens on its embedded default (/run/arenad/arenad.sock,
# or $ARENAD_SOCKET); otherwise on ./run/arenad.sock. Ctrl-C stops it cleanly:
# the script execs arenad, so the signal goes straight to it. arenad supervises
# itself (no --no-supervise here): a crash of its serving process is restarted
# with the pools and the lease ledger, so clients lose nothing, as under systemd.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

usage() {
    cat <<'EOF'
Usage: ./run.sh [ARENAD_OPTIONS...]
       ./run.sh demo [DEMO_OPTIONS...]

Installs the build dependencies that are missing (Debian 12, apt-get), builds
into build/, and runs build/bin/arenad in the foreground. ARENAD_OPTIONS go to
arenad as they are, e.g. ./run.sh --budget 2G --log-level debug.
Stop it with Ctrl-C.

demo runs build/bin/arena-demo: a generator builds a scenario out of millions
of small objects, frees it and blocks in waitpid while a simulator needs most
of the budget; once on the system allocator, once through a private arenad,
printing both processes' RSS over time (DEMO_OPTIONS: arena-demo --help).
EOF
}

# ---- subcommands ------------------------------------------------------------
case "${1:-}" in
-h | --help)
    usage
    exit 0
    ;;
demo)
    # Built and run below, after the dependencies.
    ;;
"" | -*) ;;
*)
    echo "./run.sh: unknown subcommand '$1'" >&2
    usage >&2
    exit 2
    ;;
esac

# ---- dependencies -----------------------------------------------------------
# python3-dev and friends: the Python package (python/) and its examples.
PACKAGES=(build-essential cmake pkg-config libuv1-dev libprotobuf-c-dev protobuf-c-compiler
    libjson-c-dev check libsubunit-dev libsystemd-dev python3-dev python3-numpy python3-pytest
    python3-setuptools python3-pip python3-wheel)
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

if [[ ${1:-} == demo ]]; then
    # arena-demo starts (and stops) its own private arenad on a temporary socket.
    shift
    cmake --build build -j"$(nproc)" --target arena-demo
    exec build/bin/arena-demo "$@"
fi

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
