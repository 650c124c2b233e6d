/* SPDX-License-Identifier: MIT
 *
 * prom_check.c -- a strict checker of the Prometheus text exposition format
 * 0.0.4, for `arenactl metrics`. Reads stdin; exits 0 when the text is valid,
 * 1 with "LINE: reason" on stderr otherwise.
 *
 * Checked: every line ends in '\n' (the last one too); "# HELP name text"
 * and "# TYPE name type" with valid names, at most one of each per family,
 * TYPE before the family's first sample and of a known type, HELP escapes
 * limited to \\ and \n; samples as name{label="value",...} value
 * [timestamp] with metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* not starting with "__", label values with only \\,
 * \" and \n escapes, no label repeated, Go-style floats (NaN, +Inf, -Inf
 * included), integer timestamps; every sample belongs to a family that has a
 * TYPE and a HELP (histogram and summary samples by their _bucket, _sum,
 * _count suffixes), a family's lines are contiguous, and no series (name
 * plus label set) appears twice.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES 512
#define MAX_SERIES   8192
#define MAX_LABELS   32

typedef struct family {
    char name[256];
    char type[16];
    bool help;
    bool typed;
    bool closed; /* another family's line came after this one's */
} family_t;

static family_t fams[MAX_FAMILIES];
static size_t nfams;
static char *series[MAX_SERIES];
static size_t nseries;
static long lineno;
static int current = -1; /* the family of the previous line */

static int fail(const char *why, const char *detail)
{
    fprintf(stderr, "prom_check: line %ld: %s%s%s\n", lineno, why, detail ? ": " : "",
            detail ? detail : "");
    return -1;
}

static bool name_char(char c, bool first, bool colon)
{
    return isalpha((unsigned char)c) || c == '_' || (colon && c == ':') ||
           (!first && isdigit((unsigned char)c));
}

/* Length of a metric (colon true) or label name at p, 0 if none. */
static size_t name_len(const char *p, bool colon)
{
    size_t n = 0;
    while (name_char(p[n], n == 0, colon))
        n++;
    return n;
}

static int family_find(const char *name)
{
    for (size_t i = 0; i < nfams; i++) {
        if (strcmp(fams[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int family_get(const char *name, size_t len)
{
    char n[256];
    if (len >= sizeof(n))
        return -1;
    memcpy(n, name, len);
    n[len] = '\0';
    int i = family_find(n);
    if (i >= 0)
        return i;
    if (nfams >= MAX_FAMILIES)
        return -1;
    memset(&fams[nfams], 0, sizeof(fams[0]));
    memcpy(fams[nfams].name, n, len + 1);
    return (int)nfams++;
}

/* A line of family f: families must not interleave. */
static int family_touch(int f)
{
    if (f == current)
        return 0;
    if (fams[f].closed)
        return fail("family continues after other families' lines", fams[f].name);
    if (current >= 0)
        fams[current].closed = true;
    current = f;
    return 0;
}

static bool valid_float(const char *s, size_t len)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (strcmp(buf, "NaN") == 0 || strcmp(buf, "+Inf") == 0 || strcmp(buf, "-Inf") == 0)
        return true;
    /* digits, one dot, optional exponent; strtod would also take hex and "inf". */
    const char *p = buf;
    if (*p == '+' || *p == '-')
        p++;
    bool digits = false;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits = true;
        }
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

static int check_comment(const char *line)
{
    bool help = strncmp(line, "# HELP ", 7) == 0;
    bool type = strncmp(line, "# TYPE ", 7) == 0;
    if (!help && !type)
        return 0; /* a plain comment */
    const char *p = line + 7;
    size_t n = name_len(p, true);
    if (n == 0)
        return fail("bad metric name in", help ? "HELP" : "TYPE");
    int f = family_get(p, n);
    if (f < 0)
        return fail("too many families or name too long", NULL);
    if (family_touch(f) < 0)
        return -1;
    p += n;
    if (*p != ' ' && *p != '\0')
        return fail("bad metric name in", help ? "HELP" : "TYPE");
    if (*p == ' ')
        p++;
    if (help) {
        if (fams[f].help)
            return fail("second HELP for", fams[f].name);
        fams[f].help = true;
        for (; *p; p++) {
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != 'n')
                    return fail("bad escape in HELP of", fams[f].name);
            }
        }
        return 0;
    }
    if (fams[f].typed)
        return fail("second TYPE for", fams[f].name);
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    bool known = false;
    for (size_t i = 0; i < 5; i++)
        known = known || strcmp(p, types[i]) == 0;
    if (!known)
        return fail("unknown TYPE", p);
    for (size_t i = 0; i < nseries; i++) {
        size_t l = strlen(fams[f].name);
        if (strncmp(series[i], fams[f].name, l) == 0 &&
            (series[i][l] == '{' || series[i][l] == '_'))
            return fail("TYPE after samples of", fams[f].name);
    }
    fams[f].typed = true;
    (void)snprintf(fams[f].type, sizeof(fams[f].type), "%s", p);
    return 0;
}

/* The family a sample name belongs to, or -1. */
static int sample_family(const char *name)
{
    int f = family_find(name);
    if (f >= 0 && fams[f].typed)
        return f;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t len = strlen(name);
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len > sl && strcmp(name + len - sl, suffixes[i]) == 0) {
            char base[256];
            memcpy(base, name, len - sl);
            base[len - sl] = '\0';
            int b = family_find(base);
            if (b >= 0 &&
                (strcmp(fams[b].type, "histogram") == 0 || strcmp(fams[b].type, "summary") == 0))
                return b;
        }
    }
    return f;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_sample(const char *line)
{
    const char *p = line;
    size_t n = name_len(p, true);
    if (n == 0 || n >= 256)
        return fail("bad metric name", line);
    char name[256];
    memcpy(name, p, n);
    name[n] = '\0';
    p += n;
    char *labels[MAX_LABELS];
    size_t nl = 0;
    int rc = -1;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            size_t k = name_len(p, false);
            if (k == 0) {
                fail("bad label name in", name);
                goto out;
            }
            if (k >= 2 && p[0] == '_' && p[1] == '_') {
                fail("reserved label name (__) in", name);
                goto out;
            }
            const char *kstart = p;
            p += k;
            if (*p++ != '=' || *p++ != '"') {
                fail("label without =\"value\" in", name);
                goto out;
            }
            const char *vstart = p;
            while (*p && *p != '"') {
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n') {
                        fail("bad escape in a label value of", name);
                        goto out;
                    }
                }
                p++;
            }
            if (*p != '"') {
                fail("unterminated label value in", name);
                goto out;
            }
            if (nl >= MAX_LABELS) {
                fail("too many labels in", name);
                goto out;
            }
            size_t len = (size_t)(p - kstart) + 1;
            labels[nl] = malloc(len + 1);
            if (!labels[nl])
                goto out;
            memcpy(labels[nl], kstart, len);
            labels[nl][len] = '\0';
            for (size_t i = 0; i < nl; i++) {
                if (strncmp(labels[i], kstart, k + 1) == 0) {
                    nl++;
                    fail("label repeated in", name);
                    goto out;
                }
            }
            nl++;
            (void)vstart;
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}') {
                fail("expected , or } in", name);
                goto out;
            }
        }
        p++;
    }
    if (*p != ' ') {
        fail("expected a space before the value of", name);
        goto out;
    }
    p++;
    const char *v = p;
    while (*p && *p != ' ')
        p++;
    if (!valid_float(v, (size_t)(p - v))) {
        fail("bad value of", name);
        goto out;
    }
    if (*p == ' ') {
        p++;
        const char *t = p;
        if (*p == '-')
            p++;
        while (isdigit((unsigned char)*p))
            p++;
        if (p == t || *p != '\0') {
            fail("bad timestamp of", name);
            goto out;
        }
    }
    int f = sample_family(name);
    if (f < 0 || !fams[f].typed) {
        fail("sample without a TYPE", name);
        goto out;
    }
    if (!fams[f].help) {
        fail("sample without a HELP", name);
        goto out;
    }
    if (family_touch(f) < 0)
        goto out;
    /* The series key: name{sorted labels}. */
    qsort(labels, nl, sizeof(labels[0]), cmp_str);
    char key[4096];
    size_t kl = (size_t)snprintf(key, sizeof(key), "%s{", name);
    for (size_t i = 0; i < nl && kl < sizeof(key); i++)
        kl += (size_t)snprintf(key + kl, sizeof(key) - kl, "%s,", labels[i]);
    for (size_t i = 0; i < nseries; i++) {
        if (strcmp(series[i], key) == 0) {
            fail("duplicate series", key);
            goto out;
        }
    }
    if (nseries >= MAX_SERIES) {
        fail("too many series", NULL);
        goto out;
    }
    series[nseries] = strdup(key);
    if (!series[nseries])
        goto out;
    nseries++;
    rc = 0;
out:
    for (size_t i = 0; i < nl; i++)
        free(labels[i]);
    return rc;
}

int main(void)
{
    static char text[1 << 22];
    size_t len = fread(text, 1, sizeof(text) - 1, stdin);
    text[len] = '\0';
    if (len == 0)
        return fail("empty input", NULL) < 0;
    if (strlen(text) != len) {
        lineno = 0;
        fail("NUL byte in input", NULL);
        return 1;
    }
    if (text[len - 1] != '\n') {
        lineno = 0;
        fail("the text does not end with a newline", NULL);
        return 1;
    }
    size_t samples = 0;
    char *save = NULL;
    char *line = text;
    for (char *nl = strchr(line, '\n'); nl; line = nl + 1, nl = strchr(line, '\n')) {
        *nl = '\0';
        lineno++;
        (void)save;
        if (line[0] == '\0')
            continue;
        int r;
        if (line[0] == '#') {
            r = check_comment(line);
        } else {
            r = check_sample(line);
            samples++;
        }
        if (r < 0)
            return 1;
    }
    for (size_t i = 0; i < nfams; i++) {
        if (!fams[i].typed)
            return fail("HELP without TYPE for", fams[i].name) < 0;
    }
    printf("prom_check: ok, %zu families, %zu samples\n", nfams, samples);
    return 0;
}
