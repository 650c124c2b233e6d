#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_ops_prom_check.sh PROM_CHECK -- the metrics checker itself: it accepts
# valid exposition text and rejects each kind of mistake it claims to catch,
# so a pass of the metrics test means something.
set -u
CHECK=$1
bad=0
ok() {
    if ! printf '%b' "$2" | "$CHECK" >/dev/null 2>&1; then
        echo "FAIL: rejected valid input: $1"; bad=1
    fi
}
no() {
    if printf '%b' "$2" | "$CHECK" >/dev/null 2>&1; then
        echo "FAIL: accepted invalid input: $1"; bad=1
    fi
}
H='# HELP a_total Things.\n# TYPE a_total counter\n'
ok "simple counter" "${H}a_total 3\n"
ok "labels with escapes" "${H}a_total{x=\"q\\\\\"\\\\\\\\\\\\n\",y=\"\"} 1e3\n"
ok "special floats and timestamp" "${H}a_total{k=\"1\"} NaN\na_total{k=\"2\"} +Inf 1700000000000\na_total{k=\"3\"} -1.5E-3\n"
ok "histogram suffixes" "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n"
ok "plain comment" "# just a note\n${H}a_total 1\n"
no "empty input" ""
no "no final newline" "${H}a_total 3"
no "bad metric name" "${H}1a_total 3\n"
no "sample without TYPE" "b 1\n"
no "sample without HELP" "# TYPE b gauge\nb 1\n"
no "second TYPE" "${H}# TYPE a_total counter\na_total 1\n"
no "second HELP" "${H}# HELP a_total again\na_total 1\n"
no "unknown type" "# HELP b B.\n# TYPE b meter\nb 1\n"
no "TYPE after samples" "# HELP b B.\nb 1\n# TYPE b gauge\n"
no "bad value" "${H}a_total three\n"
no "hex value" "${H}a_total 0x10\n"
no "bad label name" "${H}a_total{1x=\"a\"} 1\n"
no "reserved label name" "${H}a_total{__x=\"a\"} 1\n"
no "bad label escape" "${H}a_total{x=\"\\\\t\"} 1\n"
no "unterminated label value" "${H}a_total{x=\"a} 1\n"
no "repeated label" "${H}a_total{x=\"a\",x=\"b\"} 1\n"
no "duplicate series" "${H}a_total{x=\"a\"} 1\na_total{x=\"a\"} 2\n"
no "duplicate series, labels reordered" "${H}a_total{x=\"a\",y=\"b\"} 1\na_total{y=\"b\",x=\"a\"} 2\n"
no "interleaved families" "${H}# HELP b B.\n# TYPE b gauge\na_total 1\nb 1\na_total{x=\"1\"} 2\n"
no "bad timestamp" "${H}a_total 1 soon\n"
no "HELP escape" "# HELP b B\\\\t.\n# TYPE b gauge\nb 1\n"
[ $bad -eq 0 ] && echo PASS
exit $bad
