/*
 * status.h: how every strata function reports failure.
 *
 * Functions that can fail return an st_status (ST_OK == 0) and, when the
 * caller passes a non-NULL st_error, fill it with a one-line human message
 * naming the file, table, column, block or row involved. Results go out
 * through pointer parameters. Nothing in the library aborts on bad input:
 * assert() guards only our own invariants.
 *
 * Style follows nanoarrow (ArrowErrorCode + ArrowError) and zstd (error
 * codes with names): the code is for programs, the message is for people.
 */
#ifndef STRATA_STATUS_H
#define STRATA_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum st_status {
    ST_OK = 0,
    ST_ERR_INVALID = 1,     /* bad argument, bad flag, bad config value */
    ST_ERR_IO = 2,          /* open/read/write/fsync/rename failed, disk full */
    ST_ERR_CORRUPT = 3,     /* damaged layer file: checksum, magic, bounds */
    ST_ERR_NOMEM = 4,       /* allocation failed or a size would overflow */
    ST_ERR_SQLITE = 5,      /* source is not SQLite or SQLite reported an error */
    ST_ERR_SCHEMA = 6,      /* missing table / required column, wrong type */
    ST_ERR_QUALITY = 7,     /* an expectation of severity error failed */
    ST_ERR_LOCKED = 8,      /* another run holds the warehouse lock */
    ST_ERR_UNSUPPORTED = 9, /* newer major format version, unknown encoding */
    ST_ERR_NOTFOUND = 10,   /* file or table does not exist */
    ST_ERR_INTERNAL = 11,   /* a bug: an invariant of ours did not hold */
    ST_ERR_OVERFLOW = 12    /* the data cannot be aggregated safely: an int64 sum would overflow */
} st_status;

/* Longest message kept, including the terminating NUL. */
#define ST_ERROR_MSG_MAX 512

typedef struct st_error {
    st_status code;               /* same value the function returned */
    char msg[ST_ERROR_MSG_MAX];   /* one line, no trailing newline */
} st_error;

#if defined(__GNUC__) || defined(__clang__)
#define ST_MUST_USE __attribute__((warn_unused_result))
#define ST_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ST_MUST_USE
#define ST_PRINTF(f, a)
#endif

/* Forward a failure to the caller. */
#define ST_TRY(expr)                         \
    do {                                     \
        st_status st_try_s_ = (expr);        \
        if (st_try_s_ != ST_OK) return st_try_s_; \
    } while (0)

/* Sets err (if non-NULL) to code and a printf-formatted message; returns
 * code so that `return st_error_set(err, ST_ERR_IO, "...")` reads well. */
st_status st_error_set(st_error *err, st_status code, const char *fmt, ...)
    ST_PRINTF(3, 4);

/* Prefixes an existing message with context ("reading x.strata: ...").
 * Returns err->code (or ST_OK when err is NULL). */
st_status st_error_prefix(st_error *err, const char *fmt, ...) ST_PRINTF(2, 3);

/* Clears err to ST_OK / "". NULL does nothing. */
void st_error_clear(st_error *err);

/* Short stable name of a code, e.g. "ST_ERR_CORRUPT". Never NULL. */
const char *st_status_name(st_status code);

/* Process exit code documented in README.md for a status:
 * 0 ok, 3 input/schema/sqlite/notfound, 4 quality or overflow, 5 io, 6 corrupt,
 * 7 locked, 8 nomem, 2 invalid (usage), 9 unsupported, 1 internal. */
int st_status_exit_code(st_status code);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_STATUS_H */
