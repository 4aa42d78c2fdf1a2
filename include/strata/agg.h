/*
 * agg.h: the gold layer's grouped aggregation engine.
 *
 * Two objects live here.
 *
 * st_dict turns a string column, chunk by chunk, into uint32 codes and at
 * the end gives every code its rank in bytewise-sorted order of the
 * strings, so output ordered "by material_code" is deterministic whatever
 * order the strings arrived in.
 *
 * st_features computes, per (customer_id, period_key), the behavioural
 * features of docs/TABLES.md (`int_customer_analytics`) and the unified
 * per-(customer, period, material) table (`int_transactions_unified`) from
 * the accepted sales and FOC lines:
 *
 *   total_sold_quantity / total_foc_quantity   SUM(quantity), int64; a
 *                         total that does not fit is an error (whatever
 *                         the order of the lines)
 *   foc_ratio             foc / (sold + foc) in double; 0 when the
 *                         denominator is 0
 *   total_*_transactions  number of lines
 *   median_*_order_size   exact median of the line quantities (mean of
 *                         the two middle values, as double, for an even
 *                         count); absent when there are no lines
 *   unique_materials      distinct material codes over sales AND FOC lines
 *
 * How: customers get dense slots (a direct table when the id range given
 * in st_feature_dims is small, an open-addressing hash otherwise), periods
 * a dense month index through a table over the period_key range, and the
 * group key is g = slot * n_periods + month_index. Adding rows computes
 * keys with a vectorised kernel (scalar / AVX2 / AVX-512 by st_cpu_level()),
 * counts lines per group in a dense grid and appends (key, material,
 * quantity) to a row store. st_features_finish() turns the counts into
 * offsets in output order and counting-sorts the rows into one contiguous,
 * material-ordered segment per group (a two-pass radix sort, material then
 * group, when groups are large; one pass plus a small sort per segment
 * when they are small); then, on n_threads threads over disjoint group
 * ranges, it
 * computes exact sums, exact medians (selection) and distinct materials
 * (a merge of the two tables' segments). Every group is computed by
 * exactly one thread from data laid out independently of the thread
 * count, so results are identical for any n_threads.
 *
 * Memory, for S sales and F FOC rows, C customers, P periods and A active
 * groups: 12 bytes per row while adding (16 once a quantity does not fit
 * int32), 12 bytes per row after finish; during finish a 12-byte-per-row
 * copy coexists with the row store: with n_threads 1 one table at a time (peak
 * about 12*(S+F) + 12*max(S,F)), with n_threads >= 2 both tables at once
 * (about 24*(S+F), for twice the speed). Plus 8 bytes per grid cell (C*P)
 * until finish, 36 bytes per active group after finish, and 4 bytes per
 * id of the customer range when the direct table is used (<= 16 MiB).
 * Measured peaks for 10M + 10M rows over 36 periods: 100K customers (3.6M
 * groups) 440 MB with 1 thread, 550 MB with 2; 1M customers (about 15M
 * groups, nearly one line per group) 880 MB with 1 thread.
 *
 * Threading: an st_features or st_dict is used by one thread at a time;
 * st_features_finish() starts and joins its own threads.
 */
#ifndef STRATA_AGG_H
#define STRATA_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/column.h"
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- string dictionary ------------------------------------------------- */

typedef struct st_dict st_dict;

/* Creates an empty dictionary. Caller owns *out; free with st_dict_free().
 * ST_ERR_NOMEM on allocation failure. */
st_status st_dict_create(st_dict **out, st_error *err) ST_MUST_USE;
void st_dict_free(st_dict *d);

/* Encodes rows [0, col->n_rows) of a STR or BYTES column: codes[i] gets
 * the string's code, codes being handed out in first-seen order (0, 1, ...).
 * `codes` has col->n_rows entries (caller-owned). A NULL value is
 * ST_ERR_INVALID naming the row (`what` names the column in messages; may
 * be NULL). Fails with ST_ERR_INVALID after st_dict_finish(). */
st_status st_dict_add(st_dict *d, const st_column *col, uint32_t *codes,
                      const char *what, st_error *err) ST_MUST_USE;

/* As st_dict_add, except that the column's new strings are handed their
 * codes in string order (the order st_dict_finish sorts by) rather than
 * in row order: a dictionary fed the whole set first has codes equal to
 * ranks. Meant for a block's dictionary (up to ST_DICT_SORTED_ADD_MAX
 * rows; a longer column, or one with NULLs, is added as st_dict_add). */
#define ST_DICT_SORTED_ADD_MAX 4096
st_status st_dict_add_sorted(st_dict *d, const st_column *col, uint32_t *codes, const char *what,
                             st_error *err) ST_MUST_USE;

/* Number of distinct strings seen. */
uint32_t st_dict_size(const st_dict *d);

/* Sorts the strings bytewise (shorter prefix first) and fills the rank
 * tables. After this, st_dict_rank() and st_dict_sorted() are valid and no
 * more strings may be added. ST_ERR_NOMEM on allocation failure. */
st_status st_dict_finish(st_dict *d, st_error *err) ST_MUST_USE;

/* rank[code] = position of the code's string in sorted order; borrowed,
 * st_dict_size() entries, valid until st_dict_free(). NULL before finish. */
const uint32_t *st_dict_rank(const st_dict *d);
/* sorted[rank] = code; borrowed like st_dict_rank(). NULL before finish. */
const uint32_t *st_dict_sorted(const st_dict *d);

/* The bytes of a code's string (not NUL-terminated); borrowed until
 * st_dict_free(). code must be < st_dict_size(). */
const char *st_dict_str(const st_dict *d, uint32_t code, size_t *len);

/* ---- per-customer-per-period features --------------------------------- */

/* Ranges every added row must fall in (inclusive). Rows outside are
 * ST_ERR_INVALID. Pass INT64_MIN / INT64_MAX for an unknown customer
 * range: customers are then hashed. When the customer range spans at most
 * ST_FEATURES_DIRECT_IDS ids a direct table is used instead. Period keys
 * are year*100+month with month 1..12 and year >= 1; at most
 * ST_FEATURES_MAX_PERIOD_SPAN keys between min and max. */
typedef struct st_feature_dims {
    int64_t customer_id_min;
    int64_t customer_id_max;
    int32_t period_key_min;
    int32_t period_key_max;
} st_feature_dims;

/* Period keys and month numbers, the one conversion of every gold path: a
 * period key is year*100 + month (month 1..12, year >= 1), its month
 * number year*12 + month - 1 (months since January of year 0), so the
 * months between two keys are a subtraction. */
static inline bool st_period_valid(int32_t period_key)
{
    return period_key >= 101 && period_key % 100 >= 1 && period_key % 100 <= 12;
}
static inline int32_t st_period_month(int32_t period_key) { return (period_key / 100) * 12 + period_key % 100 - 1; }
static inline int32_t st_month_period(int32_t month) { return (month / 12) * 100 + month % 12 + 1; }

#define ST_FEATURES_DIRECT_IDS (1u << 22)
#define ST_FEATURES_MAX_PERIOD_SPAN (1 << 20)

typedef struct st_features st_features;

/* Creates an empty accumulator for `dims`. Caller owns *out; free with
 * st_features_free(). ST_ERR_INVALID for bad dims, ST_ERR_NOMEM. */
st_status st_features_create(st_features **out, const st_feature_dims *dims,
                             st_error *err) ST_MUST_USE;
void st_features_free(st_features *fx);

/* Adds n_rows sales (or FOC) lines; may be called any number of times
 * (chunks), results depend only on the concatenated rows. All arrays are
 * borrowed for the call only. material[] are dictionary codes (any
 * uint32; see st_features_finish()). Errors: ST_ERR_INVALID naming the
 * row (counted over all calls of that table) when a customer or period is
 * outside dims or more than UINT32_MAX rows arrive; ST_ERR_NOMEM. After an
 * error the object only accepts st_features_free(). */
st_status st_features_add_sales(st_features *fx, const int64_t *customer_id,
                                const int32_t *period_key, const uint32_t *material,
                                const int64_t *quantity, size_t n_rows,
                                st_error *err) ST_MUST_USE;
st_status st_features_add_foc(st_features *fx, const int64_t *customer_id,
                              const int32_t *period_key, const uint32_t *material,
                              const int64_t *quantity, size_t n_rows,
                              st_error *err) ST_MUST_USE;

/* Optional: makes room for exactly n_sales and n_foc rows in total, so a
 * caller that knows its row counts pays no geometric-growth slack (up to
 * 2x the row store) and no reallocation copies. Adding more rows later
 * still works (growing as usual). ST_ERR_NOMEM, ST_ERR_INVALID after
 * finish or above UINT32_MAX rows. */
st_status st_features_reserve(st_features *fx, size_t n_sales, size_t n_foc,
                              st_error *err) ST_MUST_USE;

/* Computes everything. Every added material code must be < n_materials
 * (st_dict_size()). material_rank, when non-NULL, gives the sort position
 * of each code (st_dict_rank(); n_materials entries, a permutation); when
 * NULL, codes sort as numbers. n_threads 0 means 1.
 * Errors: ST_ERR_OVERFLOW (a total, or a per-material total, does not fit
 * int64, naming the customer and period), ST_ERR_INVALID (bad code or
 * rank), ST_ERR_NOMEM.
 * Called once; adds are refused afterwards. More threads use more memory
 * (see the top of this file). */
st_status st_features_finish(st_features *fx, const uint32_t *material_rank,
                             uint32_t n_materials, unsigned n_threads,
                             st_error *err) ST_MUST_USE;

/* Active (customer, period) groups, valid after finish. */
size_t st_features_n_groups(const st_features *fx);

/* One row of int_customer_analytics. Medians are meaningful only when the
 * matching has_median_* is true (then the line count is > 0). */
typedef struct st_feature_row {
    int64_t customer_id;
    int32_t period_key;          /* year*100+month */
    int64_t total_sold_quantity;
    int64_t total_foc_quantity;
    double foc_ratio;
    int64_t total_sold_transactions;
    int64_t total_foc_transactions;
    double median_sold_order_size;
    double median_foc_order_size;
    bool has_median_sold;
    bool has_median_foc;
    int64_t unique_materials;
} st_feature_row;

/* Group i (0 <= i < st_features_n_groups()) in (customer_id, period_key)
 * order. */
void st_features_get(const st_features *fx, size_t i, st_feature_row *row);

/* Rows of int_transactions_unified, valid after finish. */
size_t st_features_n_unified(const st_features *fx);

/* Caller-owned output arrays, each with room for `cap` rows. material is
 * the code as added (look the string up with st_dict_str()). */
typedef struct st_unified_batch {
    int64_t *customer_id;
    int32_t *period_key;
    uint32_t *material;
    int64_t *sold_qty;
    int64_t *foc_qty;
    int64_t *sold_lines;
    int64_t *foc_lines;
} st_unified_batch;

/* Iteration state; zero-initialise before the first call. */
typedef struct st_unified_cursor {
    size_t group;     /* active group being emitted */
    size_t sales_pos; /* next sales row of that group's segment */
    size_t foc_pos;   /* next FOC row of that group's segment */
} st_unified_cursor;

/* Emits up to cap unified rows in (customer_id, period_key, material rank)
 * order into out; *n_out == 0 means the end. ST_ERR_INVALID if called
 * before finish or with cap == 0. */
st_status st_features_unified_next(const st_features *fx, st_unified_cursor *cur,
                                   const st_unified_batch *out, size_t cap,
                                   size_t *n_out, st_error *err) ST_MUST_USE;

/* ---- straight into columns ------------------------------------------- */

/* Number of columns of each gold table, in docs/TABLES.md order. */
#define ST_ANALYTICS_N_COLS 12
#define ST_UNIFIED_N_COLS 9

/* Appends groups [first, first + n) (clamped to st_features_n_groups())
 * to the 12 int_customer_analytics columns, in docs/TABLES.md order and
 * types (customer_id int64, year int32, month int32, period_key int32,
 * total_sold_quantity int64, total_foc_quantity int64, foc_ratio float64,
 * total_sold_transactions int64, total_foc_transactions int64,
 * median_sold_order_size float64 (NULL when no lines),
 * median_foc_order_size float64 (NULL when no lines), unique_materials
 * int64). Columns are caller-owned, initialised with those types.
 * ST_ERR_INVALID on a type mismatch or before finish; ST_ERR_NOMEM. */
st_status st_features_append_analytics(const st_features *fx, size_t first, size_t n,
                                       st_column *cols, st_error *err) ST_MUST_USE;

/* Appends up to cap int_transactions_unified rows, continuing from *cur,
 * to the 9 columns in docs/TABLES.md order (customer_id int64, year int32,
 * month int32, period_key int32, material_code string, sold_qty int64,
 * foc_qty int64, sold_lines int64, foc_lines int64). Material strings come
 * from `dict` (the dictionary that produced the codes; borrowed). *n_out
 * is the number appended, 0 at the end. Errors as st_features_unified_next()
 * plus ST_ERR_INVALID for a type mismatch or a code outside the dictionary. */
st_status st_features_append_unified(const st_features *fx, st_unified_cursor *cur,
                                     const st_dict *dict, size_t cap, st_column *cols,
                                     size_t *n_out, st_error *err) ST_MUST_USE;

/* ---- dense one-pass features ------------------------------------------ */

/* st_dense computes exactly what st_features does (same rows, same
 * order, same values) in one pass over the lines, for the common case the
 * zone maps can prove: a narrow customer id range and small integer
 * quantities. It keeps, per (customer, period) cell and table, a per
 * material (sum, lines) table and a histogram of the quantities; nothing
 * per line. Totals, line counts and distinct materials come from the
 * material tables, exact medians from walking the histograms. Sums cannot
 * overflow: st_dense_eligible() admits only quantities within int32 and
 * fewer than 2^32 lines per table, so every sum is below 2^63 in
 * magnitude. Accumulators built on different threads over disjoint lines
 * add up exactly (st_dense_merge), so results never depend on how the
 * lines were split.
 *
 * Memory: 32 bytes per cell and material (both tables) plus 4
 * bytes per cell and histogram bin, for the months that have lines and
 * are not sealed, 56 bytes per cell once a month is sealed, and 28 bytes
 * per unified row of the sealed months (the blocks of sealed months are
 * kept for later months until finish frees them); st_dense_bytes() says
 * how much at most for a given material count. A caller that reads month-ordered lines
 * seals each month once no more of its lines can come
 * (st_dense_seal_month): its blocks are reduced to per-cell results and
 * reused for the next month, so the live blocks are those of a few months
 * instead of all of them. An st_dense is used by one thread at a time. */
typedef struct st_dense_dims {
    st_feature_dims f;      /* customer and period ranges (inclusive) */
    int64_t qty_min[2];     /* per table (0 sales, 1 FOC): every quantity */
    int64_t qty_max[2];     /* lies in [qty_min, qty_max] */
} st_dense_dims;

#define ST_DENSE_MAX_CELLS (1u << 24)    /* customer ids x months */
#define ST_DENSE_MAX_QTY_SPAN (1u << 16) /* histogram bins per cell */

typedef struct st_dense st_dense;

/* True when st_dense can take these ranges: the customer range times the
 * months at most ST_DENSE_MAX_CELLS, each quantity range at most
 * ST_DENSE_MAX_QTY_SPAN values, inside [INT32_MIN, INT32_MAX]. */
bool st_dense_eligible(const st_dense_dims *d);

/* Histogram bins one accumulator over d holds (cells x both quantity
 * spans; eligible d): the fixed cost of the fused pass, which it pays
 * whatever the number of lines (zeroing, first-touch page faults, the
 * median and merge scans). */
uint64_t st_dense_slots(const st_dense_dims *d);

/* Bytes one accumulator over d with n_materials codes holds (eligible d). */
uint64_t st_dense_bytes(const st_dense_dims *d, uint32_t n_materials);

/* Creates an empty accumulator. Caller owns *out; free with
 * st_dense_free(). ST_ERR_INVALID when !st_dense_eligible(d) or the
 * period range is bad, ST_ERR_NOMEM. */
st_status st_dense_create(st_dense **out, const st_dense_dims *d, st_error *err) ST_MUST_USE;
void st_dense_free(st_dense *dn);

/* Adds n lines of table t (0 sales, 1 FOC); arrays borrowed for the call.
 * Every code is < n_codes (the dictionary's size so far; the material
 * tables grow to it). ST_ERR_INVALID naming the row (index within this
 * call) for a customer, period, quantity or code outside the ranges, or
 * more than UINT32_MAX lines in a table; ST_ERR_NOMEM. After an error
 * only st_dense_free() is allowed. */
st_status st_dense_add(st_dense *dn, int t, const int64_t *customer_id, const int32_t *period_key,
                       const uint32_t *material, const int64_t *quantity, size_t n,
                       uint32_t n_codes, st_error *err) ST_MUST_USE;

/* True when the month of period_key (inside the ranges) is sealed. */
bool st_dense_month_sealed(const st_dense *dn, int32_t period_key);

/* Declares that no more lines of period_key's month will be added: the
 * month's totals, line counts, medians and unified rows are computed now
 * and its blocks reused (a month with no lines is only marked). A later
 * line of that month is ST_ERR_INVALID, as is a period_key outside the
 * ranges; sealing twice is a no-op. ST_ERR_NOMEM; after an error only
 * st_dense_free() is allowed. */
st_status st_dense_seal_month(st_dense *dn, int32_t period_key, st_error *err) ST_MUST_USE;

/* Adds src's lines into dst (same dims). src's months may move into dst
 * without a copy, so afterwards src can only be freed. A month sealed on
 * one side must have no lines and not be sealed on the other (seal only
 * months no other accumulator has lines of). ST_ERR_INVALID for that,
 * other dims or a finished object, ST_ERR_NOMEM. */
st_status st_dense_merge(st_dense *dst, st_dense *src, st_error *err) ST_MUST_USE;

/* Reserves room for n_rows unified rows before the first seal (an upper
 * bound such as the lines to come: a row needs a line; the pages are
 * touched only as rows are sealed), so the rows are not copied as they
 * grow. ST_ERR_NOMEM leaves dn as it was (rows then grow as needed); a
 * call after a seal, or for fewer rows, does nothing. */
st_status st_dense_reserve_rows(st_dense *dn, size_t n_rows, st_error *err) ST_MUST_USE;

/* Computes the groups; material_rank as for st_features_finish() (NULL =
 * codes sort as numbers). ST_ERR_INVALID when a code with lines is not
 * below n_materials or the rank table is not a permutation; ST_ERR_NOMEM.
 * Called once; adds are refused afterwards. */
st_status st_dense_finish(st_dense *dn, const uint32_t *material_rank, uint32_t n_materials,
                          st_error *err) ST_MUST_USE;
/* The same, putting the groups' unified rows in rank order as tasks of
 * pool (strata/pool.h; NULL: on the caller). The result does not depend
 * on the pool or its threads. */
struct st_pool;
st_status st_dense_finish_on(st_dense *dn, const uint32_t *material_rank, uint32_t n_materials,
                             struct st_pool *pool, st_error *err) ST_MUST_USE;

/* False when a unified row's sum of quantities (one customer, month and
 * material) could have left int32, the width of the rows' sums and of
 * the blocks' entries: its lines times its table's largest |quantity|
 * past INT32_MAX. The rows read from dn may then not be its results, and
 * the caller takes the st_features path instead (the gold step does;
 * never at the bench's scales). Known once every month is sealed (after
 * st_dense_finish). */
bool st_dense_sums_fit(const st_dense *dn);

/* As st_features_n_groups / _get / _n_unified / _unified_next, on a
 * finished st_dense (the cursor's sales_pos is the unified row reached
 * inside the group; foc_pos is unused). */
size_t st_dense_n_groups(const st_dense *dn);
void st_dense_get(const st_dense *dn, size_t i, st_feature_row *row);
size_t st_dense_n_unified(const st_dense *dn);
st_status st_dense_unified_next(const st_dense *dn, st_unified_cursor *cur,
                                const st_unified_batch *out, size_t cap, size_t *n_out,
                                st_error *err) ST_MUST_USE;
/* Sets *cur to unified row `row` (0 <= row <= st_dense_n_unified; the
 * end gives no more rows), so threads can each make their own stretch of
 * the rows. ST_ERR_INVALID before finish or past the end. */
st_status st_dense_unified_seek(const st_dense *dn, uint64_t row, st_unified_cursor *cur,
                                st_error *err) ST_MUST_USE;

/* As st_features_append_analytics / _append_unified, from an st_dense. */
st_status st_dense_append_analytics(const st_dense *dn, size_t first, size_t n, st_column *cols,
                                    st_error *err) ST_MUST_USE;
st_status st_dense_append_unified(const st_dense *dn, st_unified_cursor *cur, const st_dict *dict,
                                  size_t cap, st_column *cols, size_t *n_out,
                                  st_error *err) ST_MUST_USE;

/* The (customer, period) groups a range of unified rows lies in, in
 * order: group k holds rows[k] of the range's rows, all of customer
 * cust[k] and period pk[k]. Zero-initialise; the arrays (room for cap
 * groups) grow as needed and are freed by st_unified_groups_free. */
typedef struct st_unified_groups {
    int64_t *cust;
    int32_t *pk;
    uint32_t *rows;
    size_t n, cap;
} st_unified_groups;

void st_unified_groups_free(st_unified_groups *g);

/* Unified rows [first, first + n) of a finished st_dense for a writer
 * that encodes the key columns from their runs: their material codes to
 * codes[0, n), sold_qty, foc_qty, sold_lines and foc_lines appended to
 * vals[0..4) (int64 columns without NULLs; room reserved here; NULL: the
 * codes and groups only), and their groups to *g. ST_ERR_INVALID for a
 * range past the rows. */
st_status st_dense_unified_values(const st_dense *dn, uint64_t first, size_t n, st_column *vals, uint32_t *codes,
                                  st_unified_groups *g, st_error *err) ST_MUST_USE;

/* One of the four values of unified rows [first, first + n) (field 0
 * sold_qty, 1 foc_qty, 2 sold_lines, 3 foc_lines) appended to out (int64
 * without NULLs; room reserved here): what st_dense_unified_values gives
 * as vals[field], made alone into a buffer the caller reuses for each
 * value in turn. ST_ERR_INVALID for a range past the rows or another
 * field. */
st_status st_dense_unified_column(const st_dense *dn, uint64_t first, size_t n, int field, st_column *out,
                                  st_error *err) ST_MUST_USE;

/* ---- finished rows as plain arrays ------------------------------------ */

/* Groups and unified rows that were computed elsewhere (by st_features on
 * another rank, and sent here as st_feature_row and st_unified_batch
 * arrays), to be appended to the gold columns exactly as the object that
 * made them would have appended them. Either part may be empty. All
 * arrays borrowed. */
typedef struct st_feature_rows {
    const st_feature_row *groups; /* n_groups, in output order */
    size_t n_groups;
    st_unified_batch unified;     /* n_unified rows in each array */
    size_t n_unified;
} st_feature_rows;

/* As st_features_append_analytics / _append_unified, from plain rows (the
 * cursor's group is the unified row reached; the other fields unused). */
st_status st_feature_rows_append_analytics(const st_feature_rows *g, size_t first, size_t n,
                                           st_column *cols, st_error *err) ST_MUST_USE;
st_status st_feature_rows_append_unified(const st_feature_rows *g, st_unified_cursor *cur,
                                         const st_dict *dict, size_t cap, st_column *cols,
                                         size_t *n_out, st_error *err) ST_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif /* STRATA_AGG_H */
