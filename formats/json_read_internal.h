/*
 * json_read_internal.h: a small JSON reader for the files other modules
 * write next to the warehouse tables (quality/results.json,
 * _runs/latest.json). Not installed.
 *
 * The input is treated as untrusted bytes: the parser never reads past
 * `len`, limits nesting depth (ST_JSON_MAX_DEPTH) so recursion stays
 * bounded, checks every size before allocating, and turns anything it
 * does not understand into ST_ERR_CORRUPT with the byte offset. The
 * "tolerant" part is in the accessors: a missing key or a value of the
 * wrong kind reads as the caller's default, so a report survives a run
 * log from an older or newer strata.
 */
#ifndef STRATA_JSON_READ_INTERNAL_H
#define STRATA_JSON_READ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "strata/status.h"

#define ST_JSON_MAX_DEPTH 64

typedef enum st_json_kind {
    ST_JSON_NULL = 0,
    ST_JSON_BOOL,
    ST_JSON_NUM,
    ST_JSON_STR,
    ST_JSON_ARR,
    ST_JSON_OBJ
} st_json_kind;

/* One value. Strings are decoded to UTF-8 and NUL-terminated (an
 * embedded \u0000 is dropped). Arrays and objects hold n items; an
 * object's keys[i] names items[i] (duplicates kept, first wins in
 * st_json_get). The value owns everything below it. */
typedef struct st_json {
    st_json_kind kind;
    bool b;
    double num;
    char *str;
    size_t len;              /* bytes in str, without the NUL */
    struct st_json *items;
    char **keys;
    size_t n;
} st_json;

/* Parses buf[0..len) (a leading UTF-8 BOM and surrounding whitespace are
 * allowed) into *out, which the caller owns and frees with
 * st_json_free(). ST_ERR_CORRUPT naming `name` and the byte offset on bad
 * syntax, ST_ERR_NOMEM on allocation failure; *out is empty (null) then. */
st_status st_json_parse(const char *buf, size_t len, const char *name, st_json *out,
                        st_error *err) ST_MUST_USE;

/* Frees what v owns and leaves a JSON null; NULL does nothing. */
void st_json_free(st_json *v);

/* Member `key` of an object, or NULL (absent, or v not an object). */
const st_json *st_json_get(const st_json *v, const char *key);
/* Item i of an array, or NULL. */
const st_json *st_json_at(const st_json *v, size_t i);
/* Number of array/object items (0 for anything else, including NULL). */
size_t st_json_count(const st_json *v);
/* The value as a string / number / bool, or dflt when v is NULL or of
 * another kind. st_json_num also accepts a numeric string. */
const char *st_json_string(const st_json *v, const char *dflt);
double st_json_number(const st_json *v, double dflt);
bool st_json_bool(const st_json *v, bool dflt);

#endif
