#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check_library_rules.sh -- the client's folder rules, checked on what the
# build produced rather than trusted to a comment:
#
#   1. the connection library never calls malloc (the preload library routes
#      malloc to the allocator, which leases through the connection library,
#      so a libc allocation there would recurse), and neither does the
#      allocator;
#   2. libraries never print: libarena-client.so and libarena-preload.so
#      reference no stdio printing function (arenactl is the only client code
#      that prints; the preload library's one no-daemon warning is a write(2)).
#
# Usage: check_library_rules.sh --no-malloc OBJ... --no-print LIB...
# Prints each offending object and symbol; exits 1 if there is any, 2 on a
# usage error (including an object that does not exist).
set -u

malloc_family='^(malloc|calloc|realloc|reallocarray|free|cfree|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|strdup|strndup|__strdup|__strndup|asprintf|vasprintf|__asprintf_chk|__vasprintf_chk|open_memstream|getline|getdelim|fopen|fdopen|tmpfile)$'
print_family='^(printf|fprintf|vprintf|vfprintf|dprintf|vdprintf|puts|fputs|fputs_unlocked|fwrite|fwrite_unlocked|fputc|fputc_unlocked|putc|putc_unlocked|putchar|putchar_unlocked|perror|psignal|__printf_chk|__fprintf_chk|__vprintf_chk|__vfprintf_chk|__dprintf_chk|__vdprintf_chk|_IO_putc|_IO_puts|err|errx|warn|warnx|verr|verrx|vwarn|vwarnx|error|error_at_line)$'

mode=""
bad=0
checked=0
for arg in "$@"; do
    case "$arg" in
    --no-malloc) mode=malloc; continue ;;
    --no-print) mode=print; continue ;;
    esac
    if [ -z "$mode" ]; then
        echo "usage: $0 --no-malloc OBJ... --no-print LIB..." >&2
        exit 2
    fi
    if [ ! -f "$arg" ]; then
        echo "check_library_rules: no such file: $arg" >&2
        exit 2
    fi
    if [ "$mode" = malloc ]; then
        syms=$(nm -u "$arg" | awk '{print $NF}' | sed 's/@.*//')
        pattern=$malloc_family
        rule="calls the malloc family"
    else
        syms=$(nm -D --undefined-only "$arg" | awk '{print $NF}' | sed 's/@.*//')
        pattern=$print_family
        rule="prints through stdio"
    fi
    found=$(printf '%s\n' "$syms" | grep -E "$pattern" | sort -u | tr '\n' ' ')
    checked=$((checked + 1))
    if [ -n "$found" ]; then
        echo "$(basename "$arg") $rule: $found"
        bad=1
    fi
done
if [ "$checked" -eq 0 ]; then
    echo "check_library_rules: nothing to check" >&2
    exit 2
fi
[ "$bad" -eq 0 ] && echo "check_library_rules: $checked files, no malloc in the connection library or the allocator, no printing in the libraries"
exit "$bad"
