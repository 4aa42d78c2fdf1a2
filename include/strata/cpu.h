/*
 * cpu.h: which SIMD instruction set strata's kernels may use, decided once.
 *
 * Every vectorised kernel has a scalar version (the specification) and may
 * have AVX2 / AVX-512 versions compiled with per-function target
 * attributes. Dispatchers call st_cpu_level() and pick the best variant not
 * above it. The answer comes from cpuid (via __builtin_cpu_supports) the
 * first time it is asked and is cached; it is safe to call from any thread.
 *
 * Environment: STRATA_FORCE_SCALAR set to a non-empty value other than "0"
 * makes st_cpu_level() return ST_CPU_SCALAR (read once, at first call).
 *
 * ST_CPU_AVX512 means AVX-512 F, BW, DQ and VL are all available, matching
 * the target("avx512f,avx512bw,avx512dq,avx512vl") attribute kernels use.
 */
#ifndef STRATA_CPU_H
#define STRATA_CPU_H

#ifdef __cplusplus
extern "C" {
#endif

/* Ordered: a higher level implies every lower one is usable. */
typedef enum st_cpu_isa {
    ST_CPU_SCALAR = 0,
    ST_CPU_AVX2 = 1,
    ST_CPU_AVX512 = 2
} st_cpu_isa;

/* The best level usable on this machine and allowed by the environment
 * and by st_cpu_cap(). Cached after the first call; thread-safe. */
st_cpu_isa st_cpu_level(void);

/* The level the hardware supports, ignoring STRATA_FORCE_SCALAR and
 * st_cpu_cap() (for reports and tests). Cached; thread-safe. */
st_cpu_isa st_cpu_detected(void);

/* Tests and benchmarks: caps st_cpu_level() at `max` (never raises it
 * above what the machine and environment allow). st_cpu_cap(ST_CPU_AVX512)
 * removes the cap. Not meant to be called while kernels run on other
 * threads (they would see the old or the new level, both valid). */
void st_cpu_cap(st_cpu_isa max);

/* "scalar", "avx2", "avx512"; "?" for anything else. */
const char *st_cpu_name(st_cpu_isa level);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_CPU_H */
