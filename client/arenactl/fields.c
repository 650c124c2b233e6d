/* SPDX-License-Identifier: MIT
 *
 * fields.c -- the admin records as arenactl sees them: one descriptor per
 * field, generated from the field lists in records.h, and the generic JSON
 * objects, table cells, headings and rows built from them.
 *
 * A field added to a list shows up in every --json output of its record and,
 * when it has a heading, as a table column, with nothing to change here.
 * Constant data and pure functions; any thread.
 */
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "ctl.h"
#include "records.h"
#include "size.h"

#define FIELD(name, wire, extra, show, heading, width)                                             \
    {#name, offsetof(FIELD_RECORD, name), ARENA__CTL_WIRE_##wire, ARENA__CTL_SHOW_##show, heading, \
     width},

#define FIELD_RECORD arena__rec_status_t
static const arena__ctl_field_t fields_status[] = {ARENA_REC_STATUS(FIELD)};
#undef FIELD_RECORD
#define FIELD_RECORD arena__rec_client_t
static const arena__ctl_field_t fields_client[] = {ARENA_REC_CLIENT(FIELD)};
#undef FIELD_RECORD
#define FIELD_RECORD arena__rec_lease_t
static const arena__ctl_field_t fields_lease[] = {ARENA_REC_LEASE(FIELD)};
#undef FIELD_RECORD
#define FIELD_RECORD arena__rec_event_t
static const arena__ctl_field_t fields_event[] = {ARENA_REC_EVENT(FIELD)};
#undef FIELD_RECORD

#define RECORD(a)                                                                                  \
    {                                                                                              \
        (a), sizeof(a) / sizeof((a)[0])                                                            \
    }
const arena__ctl_record_t arena__ctl_rec_status = RECORD(fields_status);
const arena__ctl_record_t arena__ctl_rec_client = RECORD(fields_client);
const arena__ctl_record_t arena__ctl_rec_lease = RECORD(fields_lease);
const arena__ctl_record_t arena__ctl_rec_event = RECORD(fields_event);

const char *arena__ctl_size(uint64_t bytes, char *buf, size_t len)
{
    return arena__size_format(bytes, buf, len);
}

const char *arena__ctl_duration(uint64_t ms, char *buf, size_t len)
{
    uint64_t s = ms / 1000;
    if (s < 60)
        (void)snprintf(buf, len, "%" PRIu64 ".%01" PRIu64 "s", s, (ms % 1000) / 100);
    else if (s < 3600)
        (void)snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        (void)snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s / 60) % 60);
    else
        (void)snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s / 3600) % 24);
    return buf;
}

/* The field's value as an unsigned integer (integers, booleans, enums). */
static uint64_t field_u64(const arena__ctl_field_t *f, const void *p)
{
    const char *at = (const char *)p + f->offset;
    switch (f->wire) {
    case ARENA__CTL_WIRE_U32:
    case ARENA__CTL_WIRE_ENUM: {
        uint32_t v;
        memcpy(&v, at, sizeof(v));
        return v;
    }
    case ARENA__CTL_WIRE_U64: {
        uint64_t v;
        memcpy(&v, at, sizeof(v));
        return v;
    }
    case ARENA__CTL_WIRE_BOOL: {
        bool v;
        memcpy(&v, at, sizeof(v));
        return v;
    }
    default:
        return 0;
    }
}

static double field_double(const arena__ctl_field_t *f, const void *p)
{
    double v;
    memcpy(&v, (const char *)p + f->offset, sizeof(v));
    return v;
}

static const char *field_str(const arena__ctl_field_t *f, const void *p)
{
    return (const char *)p + f->offset;
}

static json_object *field_json(const arena__ctl_field_t *f, const void *p)
{
    if (f->show == ARENA__CTL_SHOW_EVKIND)
        return json_object_new_string(arena__admin_event_kind((uint32_t)field_u64(f, p)));
    switch (f->wire) {
    case ARENA__CTL_WIRE_STR:
        return arena__ctl_json_string(field_str(f, p));
    case ARENA__CTL_WIRE_F64:
        return arena__ctl_json_double(field_double(f, p));
    case ARENA__CTL_WIRE_BOOL:
        return json_object_new_boolean(field_u64(f, p) != 0);
    default:
        return arena__ctl_json_u64(field_u64(f, p));
    }
}

void arena__ctl_record_json_into(const arena__ctl_record_t *rec, const void *p, json_object *obj)
{
    for (size_t i = 0; i < rec->count; i++)
        (void)json_object_object_add(obj, rec->fields[i].key, field_json(&rec->fields[i], p));
}

json_object *arena__ctl_record_json(const arena__ctl_record_t *rec, const void *p)
{
    json_object *obj = json_object_new_object();
    if (obj)
        arena__ctl_record_json_into(rec, p, obj);
    return obj;
}

json_object *arena__ctl_records_json(const arena__ctl_record_t *rec, const void *items, size_t n,
                                     size_t size)
{
    json_object *arr = json_object_new_array_ext((int)(n < 1024 ? n : 1024));
    for (size_t i = 0; arr && i < n; i++)
        (void)json_object_array_add(arr,
                                    arena__ctl_record_json(rec, (const char *)items + i * size));
    return arr;
}

const char *arena__ctl_cell(const arena__ctl_field_t *f, const void *p, char *buf, size_t len)
{
    switch (f->show) {
    case ARENA__CTL_SHOW_BYTES:
        return arena__ctl_size(field_u64(f, p), buf, len);
    case ARENA__CTL_SHOW_MS:
        return arena__ctl_duration(field_u64(f, p), buf, len);
    case ARENA__CTL_SHOW_HEX:
        (void)snprintf(buf, len, "%#" PRIx64, field_u64(f, p));
        return buf;
    case ARENA__CTL_SHOW_RATIO:
        (void)snprintf(buf, len, "%.1f%%", field_double(f, p) * 100.0);
        return buf;
    case ARENA__CTL_SHOW_TEXT:
        (void)snprintf(buf, len, "%s", field_str(f, p));
        return buf;
    case ARENA__CTL_SHOW_BOOL:
        (void)snprintf(buf, len, "%s", field_u64(f, p) ? "yes" : "no");
        return buf;
    case ARENA__CTL_SHOW_EVKIND:
        (void)snprintf(buf, len, "%s", arena__admin_event_kind((uint32_t)field_u64(f, p)));
        return buf;
    case ARENA__CTL_SHOW_COUNT:
    case ARENA__CTL_SHOW_ID:
    default:
        (void)snprintf(buf, len, "%" PRIu64, field_u64(f, p));
        return buf;
    }
}

static void table_cell(const arena__ctl_field_t *f, const char *text, bool *first, FILE *out)
{
    (void)fputs(*first ? "" : " ", out);
    *first = false;
    if (f->width < 0)
        (void)fprintf(out, "%-*.*s", -f->width, -f->width, text);
    else
        (void)fprintf(out, "%*s", f->width, text);
}

void arena__ctl_table_head(const arena__ctl_record_t *rec, FILE *out)
{
    bool first = true;
    for (size_t i = 0; i < rec->count; i++) {
        if (rec->fields[i].heading)
            table_cell(&rec->fields[i], rec->fields[i].heading, &first, out);
    }
    (void)fputc('\n', out);
}

void arena__ctl_table_row(const arena__ctl_record_t *rec, const void *p, FILE *out)
{
    bool first = true;
    for (size_t i = 0; i < rec->count; i++) {
        const arena__ctl_field_t *f = &rec->fields[i];
        if (!f->heading)
            continue;
        char buf[512];
        table_cell(f, arena__ctl_cell(f, p, buf, sizeof(buf)), &first, out);
    }
    (void)fputc('\n', out);
}
