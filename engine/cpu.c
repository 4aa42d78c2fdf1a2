/*
 * cpu.c: cached SIMD level detection (strata/cpu.h).
 *
 * Two atomics hold the state: `detected` (hardware level, -1 until probed)
 * and `cap` (the test/bench cap, default ST_CPU_AVX512). The environment
 * is folded into `detected_env` at the first probe. Probing is idempotent,
 * so two threads racing on the first call both compute the same value and
 * store it; no lock is needed. x86-64 only uses cpuid; other targets are
 * scalar.
 */
#include "strata/cpu.h"

#include <stdatomic.h>
#include <stdlib.h>

static atomic_int detected_hw = -1;   /* st_cpu_isa, -1 = not probed */
static atomic_int detected_env = -1;  /* hw level after STRATA_FORCE_SCALAR */
static atomic_int level_cap = ST_CPU_AVX512;

static int probe_hw(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx2"))
        return ST_CPU_AVX512;
    if (__builtin_cpu_supports("avx2")) return ST_CPU_AVX2;
#endif
    return ST_CPU_SCALAR;
}

static int force_scalar_env(void)
{
    const char *v = getenv("STRATA_FORCE_SCALAR");
    return v != NULL && v[0] != '\0' && !(v[0] == '0' && v[1] == '\0');
}

st_cpu_isa st_cpu_detected(void)
{
    int hw = atomic_load_explicit(&detected_hw, memory_order_relaxed);
    if (hw < 0) {
        hw = probe_hw();
        atomic_store_explicit(&detected_hw, hw, memory_order_relaxed);
    }
    return (st_cpu_isa)hw;
}

st_cpu_isa st_cpu_level(void)
{
    int lvl = atomic_load_explicit(&detected_env, memory_order_relaxed);
    if (lvl < 0) {
        lvl = force_scalar_env() ? ST_CPU_SCALAR : (int)st_cpu_detected();
        atomic_store_explicit(&detected_env, lvl, memory_order_relaxed);
    }
    int cap = atomic_load_explicit(&level_cap, memory_order_relaxed);
    return (st_cpu_isa)(lvl < cap ? lvl : cap);
}

void st_cpu_cap(st_cpu_isa max)
{
    int m = (int)max;
    if (m < ST_CPU_SCALAR) m = ST_CPU_SCALAR;
    if (m > ST_CPU_AVX512) m = ST_CPU_AVX512;
    atomic_store_explicit(&level_cap, m, memory_order_relaxed);
}

const char *st_cpu_name(st_cpu_isa level)
{
    switch (level) {
    case ST_CPU_SCALAR: return "scalar";
    case ST_CPU_AVX2: return "avx2";
    case ST_CPU_AVX512: return "avx512";
    }
    return "?";
}
