/*
 * status.c: error message formatting and the status -> exit code table.
 * The exit code table is part of the CLI contract (README.md, "Exit codes").
 */
#include "strata/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

st_status st_error_set(st_error *err, st_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

st_status st_error_prefix(st_error *err, const char *fmt, ...)
{
    if (!err) return ST_OK;
    char prefix[ST_ERROR_MSG_MAX];
    char old[ST_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t lp = strlen(prefix);
    if (lp > sizeof err->msg - 3) lp = sizeof err->msg - 3;
    memcpy(err->msg, prefix, lp);
    memcpy(err->msg + lp, ": ", 2);
    size_t room = sizeof err->msg - lp - 2 - 1, lo = strlen(old);
    if (lo > room) lo = room;
    memcpy(err->msg + lp + 2, old, lo);
    err->msg[lp + 2 + lo] = '\0';
    return err->code;
}

void st_error_clear(st_error *err)
{
    if (!err) return;
    err->code = ST_OK;
    err->msg[0] = '\0';
}

const char *st_status_name(st_status code)
{
    switch (code) {
    case ST_OK: return "ST_OK";
    case ST_ERR_INVALID: return "ST_ERR_INVALID";
    case ST_ERR_IO: return "ST_ERR_IO";
    case ST_ERR_CORRUPT: return "ST_ERR_CORRUPT";
    case ST_ERR_NOMEM: return "ST_ERR_NOMEM";
    case ST_ERR_SQLITE: return "ST_ERR_SQLITE";
    case ST_ERR_SCHEMA: return "ST_ERR_SCHEMA";
    case ST_ERR_QUALITY: return "ST_ERR_QUALITY";
    case ST_ERR_LOCKED: return "ST_ERR_LOCKED";
    case ST_ERR_UNSUPPORTED: return "ST_ERR_UNSUPPORTED";
    case ST_ERR_NOTFOUND: return "ST_ERR_NOTFOUND";
    case ST_ERR_INTERNAL: return "ST_ERR_INTERNAL";
    case ST_ERR_OVERFLOW: return "ST_ERR_OVERFLOW";
    }
    return "ST_ERR_UNKNOWN";
}

int st_status_exit_code(st_status code)
{
    switch (code) {
    case ST_OK: return 0;
    case ST_ERR_INVALID: return 2;
    case ST_ERR_SQLITE:
    case ST_ERR_SCHEMA:
    case ST_ERR_NOTFOUND: return 3;
    case ST_ERR_QUALITY:
    case ST_ERR_OVERFLOW: return 4;
    case ST_ERR_IO: return 5;
    case ST_ERR_CORRUPT: return 6;
    case ST_ERR_LOCKED: return 7;
    case ST_ERR_NOMEM: return 8;
    case ST_ERR_UNSUPPORTED: return 9;
    case ST_ERR_INTERNAL: return 1;
    }
    return 1;
}
