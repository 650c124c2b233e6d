/* SPDX-License-Identifier: MIT
 *
 * json.c -- arenactl's JSON values, all built with json-c.
 *
 * json-c escapes quotes, backslashes and control bytes, but copies bytes
 * >= 0x80 as they are, valid UTF-8 or not: a client name cut in the middle of
 * a sequence (the records cut strings to fit) or sent as Latin-1 would make
 * the document invalid. So every string is cleaned to valid UTF-8 here first,
 * each bad byte becoming U+FFFD, and json-c does all the escaping. Numbers
 * that are not finite become null (json-c would write NaN). Any thread.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Length of the well-formed UTF-8 sequence at s (1-4), or 0 if there is none
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t json_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

char *arena__ctl_utf8_clean(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)p);
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(len * 3 + 1); /* one bad byte grows to three */
    if (!out)
        return NULL;
    size_t o = 0;
    while (*p) {
        size_t n = json_utf8_len(p);
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD */
            o += 3;
            p++;
        } else {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        }
    }
    out[o] = '\0';
    return out;
}

json_object *arena__ctl_json_string(const char *s)
{
    char *clean = arena__ctl_utf8_clean(s);
    if (!clean)
        return NULL;
    json_object *j = json_object_new_string(clean);
    free(clean);
    return j;
}

json_object *arena__ctl_json_double(double v)
{
    if (!isfinite(v))
        return NULL; /* null */
    char text[32];
    (void)snprintf(text, sizeof(text), "%.17g", v);
    return json_object_new_double_s(v, text);
}

json_object *arena__ctl_json_u64(uint64_t v)
{
    return json_object_new_uint64(v);
}

/* One document on one line: no pretty-printing, no spaces, and "/" as is. */
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

const char *arena__ctl_json_text(json_object *doc)
{
    return json_object_to_json_string_ext(doc, JSON_FLAGS);
}

int arena__ctl_json_print(FILE *out, json_object *doc)
{
    if (!doc)
        return -ENOMEM;
    const char *text = arena__ctl_json_text(doc);
    int r = text ? 0 : -ENOMEM;
    if (text)
        (void)fprintf(out, "%s\n", text);
    json_object_put(doc);
    return r;
}
