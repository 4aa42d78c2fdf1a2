/*
 * fuzz_cast.c: arbitrary bytes through every cast (strata/cast.h).
 *
 * The first input byte picks how the rest is presented: as TEXT, as a
 * BLOB, as the 8 bytes of a REAL or an INTEGER, and through a bronze
 * triple decoded by st_value_from_bronze(). Checks: nothing reads past
 * the input (ASan), accepted integers round-trip through their decimal
 * text, accepted text is a trimmed slice of the input, and the rendering
 * is well-formed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata/cast.h"

static void check(const st_value *v)
{
    int64_t i = 0;
    st_cast_result r = st_cast_to_i64(v, &i);
    if (r == ST_CAST_OK) {
        char num[ST_CAST_NUM_MAX];
        const char *s;
        size_t len;
        st_value iv = {.cls = 1, .i = i};
        if (st_cast_to_text(&iv, num, &s, &len) != ST_CAST_OK) abort();
        st_value back = {.cls = 3, .s = s, .len = len};
        int64_t j = 0;
        if (st_cast_to_i64(&back, &j) != ST_CAST_OK || j != i) abort();
    }
    char num[ST_CAST_NUM_MAX];
    const char *s = NULL;
    size_t len = 0;
    r = st_cast_to_text(v, num, &s, &len);
    if (r == ST_CAST_OK) {
        if (len == 0) abort();
        if (v->cls == 3 && (s < v->s || s + len > v->s + v->len)) abort();
    }
    st_buf b;
    st_buf_init(&b);
    st_cast_render(&b, v);
    if (st_buf_ok(&b) && b.len == 0 && !(v->cls == 3 && v->len == 0)) abort();
    st_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    /* copy so ASan catches any read past the end */
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    st_value v = {0};
    switch (mode % 5) {
    case 0: v = (st_value){.cls = 3, .s = copy, .len = size}; break;
    case 1: v = (st_value){.cls = 4, .s = copy, .len = size}; break;
    case 2: {
        double r = 0;
        memcpy(&r, copy, size < 8 ? size : 8);
        v = (st_value){.cls = 2, .r = r};
        break;
    }
    case 3: {
        int64_t i = 0;
        memcpy(&i, copy, size < 8 ? size : 8);
        v = (st_value){.cls = 1, .i = i};
        break;
    }
    case 4: {
        /* a one-row bronze triple: class from the mode byte, payload as raw */
        st_column val, cls, raw;
        st_column_init(&val, ST_TYPE_I64);
        st_column_init(&cls, ST_TYPE_I32);
        st_column_init(&raw, ST_TYPE_BYTES);
        if (st_column_push_null(&val) == ST_OK && st_column_push_i32(&cls, (int32_t)(mode / 5) % 6) == ST_OK &&
            st_column_push_str(&raw, copy, size) == ST_OK) {
            st_value bv;
            if (st_value_from_bronze(&val, &cls, &raw, 0, &bv)) check(&bv);
        }
        st_column_free(&val);
        st_column_free(&cls);
        st_column_free(&raw);
        free(copy);
        return 0;
    }
    }
    check(&v);
    free(copy);
    return 0;
}
