/*
 * kernels_bench.c: throughput of the gold feature engine (strata/agg.h).
 *
 * Builds a synthetic load (default 10M sales + 10M FOC lines, 100K
 * customers, 36 periods, 5000 materials), then reports, as the median of
 * several runs: the group-key kernel alone per SIMD level, the add path
 * per SIMD level, finish with 1 and 2 threads, and the unified-row
 * iteration; finally peak RSS. Not part of the test suite; build with
 *   cc -O2 -Iinclude -Iengine bench/kernels_bench.c build/libstrata.a -lpthread -lm
 * and run `kernels_bench [rows_per_table] [customers]`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "agg_internal.h"
#include "strata/agg.h"
#include "strata/cpu.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median3(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

typedef struct table {
    int64_t *cust;
    int32_t *pk;
    uint32_t *mat;
    int64_t *qty;
} table;

#define RUNS 3
#define CHUNK 65536

static st_features *build(const table *t, size_t n, const st_feature_dims *dims, double *add_s)
{
    st_error err;
    st_features *fx;
    if (st_features_create(&fx, dims, &err) != ST_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    double t0 = now_s();
    for (int k = 0; k < 2; k++)
        for (size_t b = 0; b < n; b += CHUNK) {
            size_t m = n - b < CHUNK ? n - b : CHUNK;
            st_status s = (k ? st_features_add_foc : st_features_add_sales)(
                fx, t[k].cust + b, t[k].pk + b, t[k].mat + b, t[k].qty + b, m, &err);
            if (s != ST_OK) {
                fprintf(stderr, "%s\n", err.msg);
                exit(1);
            }
        }
    *add_s = now_s() - t0;
    return fx;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    size_t n_cust = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
    const uint32_t n_mat = 5000;
    uint64_t s = 1;
    table t[2];
    for (int k = 0; k < 2; k++) {
        t[k].cust = malloc(n * sizeof(int64_t));
        t[k].pk = malloc(n * sizeof(int32_t));
        t[k].mat = malloc(n * sizeof(uint32_t));
        t[k].qty = malloc(n * sizeof(int64_t));
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&s);
            t[k].cust[i] = 1 + (int64_t)(r % n_cust);
            int m = (int)((r >> 24) % 36);
            t[k].pk[i] = (2021 + m / 12) * 100 + m % 12 + 1;
            t[k].mat[i] = (uint32_t)((r >> 32) % n_mat);
            t[k].qty[i] = 1 + (int64_t)((r >> 48) % 100);
        }
    }
    st_feature_dims dims = {1, (int64_t)n_cust, 202101, 202312};
    printf("rows per table %zu, customers %zu, periods 36, materials %u, cpu %s\n", n, n_cust,
           n_mat, st_cpu_name(st_cpu_level()));

    /* key kernel alone, all rows pre-slotted */
    uint32_t *slot = malloc(n_cust * sizeof *slot), per[212];
    for (size_t i = 0; i < n_cust; i++) slot[i] = (uint32_t)i;
    for (int i = 0; i < 212; i++) {
        int32_t pk = 202101 + i;
        per[i] = (pk % 100 >= 1 && pk % 100 <= 12) ? (uint32_t)((pk / 100 - 2021) * 12 + pk % 100 - 1)
                                                   : ST_KEY_NONE;
    }
    st_keys_ctx kc = {1, (uint32_t)n_cust, slot, 202101, 212, per, 36};
    uint32_t *keys = malloc(n * sizeof *keys);
    for (int lvl = 0; lvl <= (int)st_cpu_detected(); lvl++) {
        st_keys_fn fn = st_keys_direct_pick((st_cpu_isa)lvl);
        double v[RUNS];
        for (int r = 0; r < RUNS; r++) {
            double t0 = now_s();
            size_t done = 0;
            for (size_t b = 0; b < n; b += 2048) {
                size_t m = n - b < 2048 ? n - b : 2048;
                done += fn(&kc, t[0].cust + b, t[0].pk + b, m, keys + b);
            }
            v[r] = now_s() - t0;
            if (done != n) return 1;
        }
        double m = median3(v, RUNS);
        printf("key kernel %-7s %8.1f Mrows/s\n", st_cpu_name((st_cpu_isa)lvl), (double)n / m / 1e6);
    }
    free(keys);
    free(slot);

    /* whole engine */
    for (int lvl = 0; lvl <= (int)st_cpu_detected(); lvl++) {
        double va[RUNS], vf1[RUNS], vf2[RUNS], vu[RUNS];
        for (int r = 0; r < RUNS; r++) {
            st_cpu_cap((st_cpu_isa)lvl);
            for (unsigned th = 1; th <= 2; th++) {
                double add_s;
                st_features *fx = build(t, n, &dims, &add_s);
                st_error err;
                double t0 = now_s();
                if (st_features_finish(fx, NULL, n_mat, th, &err) != ST_OK) {
                    fprintf(stderr, "%s\n", err.msg);
                    return 1;
                }
                double fin = now_s() - t0;
                if (th == 1) {
                    va[r] = add_s;
                    vf1[r] = fin;
                    enum { CAP = 4096 };
                    static int64_t c[CAP], sq[CAP], fq[CAP], sl[CAP], fl[CAP];
                    static int32_t pk[CAP];
                    static uint32_t mt[CAP];
                    st_unified_batch ub = {c, pk, mt, sq, fq, sl, fl};
                    st_unified_cursor cur = {0, 0, 0};
                    size_t got, total = 0;
                    t0 = now_s();
                    do {
                        if (st_features_unified_next(fx, &cur, &ub, CAP, &got, &err) != ST_OK) return 1;
                        total += got;
                    } while (got);
                    vu[r] = now_s() - t0;
                    if (r == 0 && lvl == 0)
                        printf("groups %zu, unified rows %zu\n", st_features_n_groups(fx), total);
                } else {
                    vf2[r] = fin;
                }
                st_features_free(fx);
            }
        }
        st_cpu_cap(ST_CPU_AVX512);
        double a = median3(va, RUNS), f1 = median3(vf1, RUNS), f2 = median3(vf2, RUNS),
               u = median3(vu, RUNS);
        double rows = 2.0 * (double)n;
        printf("%-7s add %6.3fs (%5.1f Mrows/s)  finish 1T %6.3fs  2T %6.3fs  unified %6.3fs  "
               "total 1T %5.1f Mrows/s\n",
               st_cpu_name((st_cpu_isa)lvl), a, rows / a / 1e6, f1, f2, u,
               rows / (a + f1 + u) / 1e6);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %.0f MB (includes the %.0f MB of input arrays)\n", (double)ru.ru_maxrss / 1024.0,
           2.0 * (double)n * 24.0 / 1048576.0);
    for (int k = 0; k < 2; k++) {
        free(t[k].cust);
        free(t[k].pk);
        free(t[k].mat);
        free(t[k].qty);
    }
    return 0;
}
