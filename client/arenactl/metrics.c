/* SPDX-License-Identifier: MIT
 *
 * metrics.c -- `arenactl metrics`: the daemon's Prometheus text as it wrote
 * it, or with --json one document holding the text and its samples parsed
 * into json-c objects (name, labels, value).
 *
 * The text comes from the daemon and is parsed defensively: a line that is
 * not a well-formed sample is left out of "samples" (it stays in "text"), a
 * label value's escapes are undone, and nothing is built for a line until all
 * of it parsed. Runs on the calling thread.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Skips a Prometheus label value ("..." with \\, \" and \n escapes) at p,
 * writing it unescaped into buf. Returns the character after the closing
 * quote, or NULL when malformed. */
static const char *metrics_label_value(const char *p, char *buf, size_t len)
{
    size_t n = 0;
    if (*p++ != '"')
        return NULL;
    while (*p && *p != '"' && *p != '\n') {
        char c = *p++;
        if (c == '\\') {
            c = *p++;
            if (c == '\0')
                return NULL; /* a backslash at the very end */
            if (c == 'n')
                c = '\n';
            else if (c != '\\' && c != '"')
                return NULL;
        }
        if (n + 1 < len)
            buf[n++] = c;
    }
    buf[n] = '\0';
    return *p == '"' ? p + 1 : NULL;
}

static bool metrics_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* One sample line as a JSON object, or NULL when the line is not a
 * well-formed sample. */
static json_object *metrics_sample(const char *line, size_t len)
{
    char buf[4096];
    if (len >= sizeof(buf))
        return NULL;
    memcpy(buf, line, len);
    buf[len] = '\0';
    const char *p = buf;
    if (!metrics_name_char(*p, true))
        return NULL;
    while (metrics_name_char(*p, false))
        p++;
    char name[256];
    size_t nlen = (size_t)(p - buf);
    if (nlen >= sizeof(name))
        return NULL;
    memcpy(name, buf, nlen);
    name[nlen] = '\0';

    /* Labels are checked before anything is built. */
    char labels[16][2][256];
    size_t nlabels = 0;
    if (*p == '{') {
        p++;
        while (*p && *p != '}') {
            const char *k = p;
            while (metrics_name_char(*p, p == k))
                p++;
            size_t klen = (size_t)(p - k);
            if (klen == 0 || klen >= 256 || *p != '=' || nlabels >= 16)
                return NULL;
            memcpy(labels[nlabels][0], k, klen);
            labels[nlabels][0][klen] = '\0';
            p = metrics_label_value(p + 1, labels[nlabels][1], sizeof(labels[0][1]));
            if (!p)
                return NULL;
            nlabels++;
            if (*p == ',')
                p++;
        }
        if (*p != '}')
            return NULL;
        p++;
    }
    if (*p != ' ' && *p != '\t')
        return NULL;
    while (*p == ' ' || *p == '\t')
        p++;
    char *end;
    double v = strtod(p, &end);
    if (end == p || (*end && *end != ' ' && *end != '\t'))
        return NULL;

    json_object *sample = json_object_new_object();
    json_object *lab = json_object_new_object();
    if (!sample || !lab) {
        json_object_put(sample);
        json_object_put(lab);
        return NULL;
    }
    (void)json_object_object_add(sample, "name", arena__ctl_json_string(name));
    for (size_t i = 0; i < nlabels; i++) {
        char *key = arena__ctl_utf8_clean(labels[i][0]);
        if (key)
            (void)json_object_object_add(lab, key, arena__ctl_json_string(labels[i][1]));
        free(key);
    }
    (void)json_object_object_add(sample, "labels", lab);
    (void)json_object_object_add(sample, "value", arena__ctl_json_double(v));
    return sample;
}

json_object *arena__ctl_metrics_json(const char *text)
{
    json_object *doc = json_object_new_object();
    json_object *samples = json_object_new_array();
    if (!doc || !samples) {
        json_object_put(doc);
        json_object_put(samples);
        return NULL;
    }
    (void)json_object_object_add(doc, "format", json_object_new_string("prometheus-text-0.0.4"));
    (void)json_object_object_add(doc, "text", arena__ctl_json_string(text));
    const char *p = text ? text : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_object *s = len && *p != '#' ? metrics_sample(p, len) : NULL;
        if (s)
            (void)json_object_array_add(samples, s);
        p += len + (nl ? 1 : 0);
    }
    (void)json_object_object_add(doc, "samples", samples);
    return doc;
}

int arena__ctl_run_metrics(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)err;
    arena__admin_text_t *t;
    int r = arena__admin_metrics(conn, &t);
    if (r < 0)
        return r;
    if (a->json) {
        r = arena__ctl_json_print(out, arena__ctl_metrics_json(t->text));
    } else {
        (void)fwrite(t->text, 1, t->len, out);
        if (t->len && t->text[t->len - 1] != '\n')
            (void)fputc('\n', out);
    }
    arena__admin_text_free(t);
    return r;
}
