/*
 * kmeans_dispatch.c: the k-means kernel table, chosen at run time.
 *
 * The one place that knows all three kernels: kmeans.c asks it for the
 * kernel of the level in use (st_km_kernel_for(st_km_level())), and the
 * kernels themselves know nothing of it or of kmeans.c, so calls go one
 * way: kmeans.c -> kmeans_dispatch.c -> kmeans_{scalar,avx2,avx512}.c.
 *
 * The level is read once from the environment and cpuid and cached.
 * STRATA_FORCE_SCALAR=1 forces the scalar kernel;
 * STRATA_KMEANS_KERNEL=scalar|avx2|avx512 asks for one kernel (ignored,
 * falling back to the best available, when the CPU lacks it); tests use
 * st_kmeans_force_kernel().
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans_internal.h"
#include "strata/ml.h"

static bool cpu_has(int level)
{
    if (level == 1) return __builtin_cpu_supports("avx2");
    if (level == 2) return __builtin_cpu_supports("avx512f");
    return level == 0;
}

static atomic_int forced = -1;

bool st_kmeans_force_kernel(int level)
{
    if (level < -1 || level > 2) return false;
    if (level >= 0 && !cpu_has(level)) return false;
    atomic_store(&forced, level);
    return true;
}

static int auto_level(void)
{
    static atomic_int cached = -1;
    int v = atomic_load(&cached);
    if (v >= 0) return v;
    const char *f = getenv("STRATA_FORCE_SCALAR");
    const char *want = getenv("STRATA_KMEANS_KERNEL");
    if (f && *f && strcmp(f, "0") != 0) v = 0;
    else if (want && !strcmp(want, "scalar")) v = 0;
    else if (want && !strcmp(want, "avx2") && cpu_has(1)) v = 1;
    else if (want && !strcmp(want, "avx512") && cpu_has(2)) v = 2;
    else v = cpu_has(2) ? 2 : cpu_has(1) ? 1 : 0;
    atomic_store(&cached, v);
    return v;
}

int st_km_level(void)
{
    int f = atomic_load(&forced);
    return f >= 0 ? f : auto_level();
}

st_km_kernel_fn st_km_kernel_for(int level)
{
    switch (level) {
    case 2: return st_km_kernel_avx512;
    case 1: return st_km_kernel_avx2;
    default: return st_km_kernel_scalar;
    }
}

const char *st_kmeans_kernel_name(void)
{
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    return names[st_km_level()];
}
