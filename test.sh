#!/usr/bin/env bash
# test.sh -- install what is missing (Debian 12), build, run the whole test suite.
#
#   ./test.sh          plain build in build/, every CTest test
#   ./test.sh --ci     also under ASan+UBSan (build-asan/, every test) and TSan
#                      (build-tsan/, the tests labelled tsan); warnings are errors
#
# Exits non-zero on any failure. .ci/run calls ./test.sh --ci.
set -euo pipefail
cd "$(dirname "$0")"

ci=0
for arg in "$@"; do
    case "$arg" in
    --ci) ci=1 ;;
    -h | --help)
        sed -n '2,9p' "$0"
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done
[ "${CI:-}" = "true" ] && ci=1

# Build and test dependencies, all from Debian 12.
# The Python package (python/) is built for /usr/bin/python3 and tested with its
# pytest and NumPy; pip, setuptools and wheel for the offline pip install test.
packages=(build-essential cmake pkg-config libuv1-dev libprotobuf-c-dev protobuf-c-compiler
    libjson-c-dev check libsubunit-dev libsystemd-dev python3 coreutils procps groff-base systemd
    python3-dev python3-pytest python3-numpy python3-setuptools python3-pip python3-wheel)
# CI also runs the libFuzzer smoke test (test_fuzz_smoke): clang and its runtimes;
# and test_ops_deb builds the Debian packages and runs lintian on them: debhelper, lintian.
if [ $ci = 1 ]; then
    packages+=(clang-14 libclang-rt-14-dev debhelper lintian)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

jobs=$(nproc 2>/dev/null || echo 2)

# run_suite DIR [CTEST_ARGS...] -- [CMAKE_ARGS...]: configure, build, test.
run_suite() {
    local dir=$1
    shift
    local cmake_args=() ctest_args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        ctest_args+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    cmake_args=("$@")
    echo "=== $dir: configure ${cmake_args[*]:-}"
    local werror=OFF
    [ $ci = 1 ] && werror=ON
    cmake -S . -B "$dir" -DARENA_WERROR=$werror "${cmake_args[@]}" >/dev/null
    echo "=== $dir: build"
    cmake --build "$dir" -j "$jobs"
    echo "=== $dir: test ${ctest_args[*]:-}"
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" "${ctest_args[@]}" | tee "$dir/ctest.out"
    collect_skips "$dir"
}

# collect_skips DIR: appends to $skips each test CTest reported as skipped in
# DIR's last run, with the reasons it printed (its "SKIP..." lines).
skips=""
collect_skips() {
    local dir=$1 name reasons
    for name in $(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (Skipped)$/\1/p' "$dir/ctest.out"); do
        reasons=$(awk -v t="$name" '
            $0 ~ "^[0-9]+/[0-9]+ Test(ing)?: " { cur = $NF }
            cur == t && /SKIP/ { print "      " $0 }' "$dir/Testing/Temporary/LastTest.log" |
            sort -u)
        skips+="  $dir: $name"$'\n'"${reasons:-      (no reason printed)}"$'\n'
    done
}

run_suite build --
if [ $ci = 1 ]; then
    # Sanitizer builds: fail on the first report; keep leak checking on.
    export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
    run_suite build-asan -- -DARENA_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
    run_suite build-tsan -L tsan -- -DARENA_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug
fi
if [ -n "$skips" ]; then
    # Nothing failed, but not everything ran: say what did not, and why.
    echo "test.sh: no test failed, but these were skipped:"
    printf '%s' "$skips"
else
    echo "test.sh: all suites passed"
fi
