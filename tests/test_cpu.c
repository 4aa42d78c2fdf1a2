/*
 * test_cpu.c: st_cpu_level() is cached, ordered, honours st_cpu_cap() and
 * never exceeds the hardware level.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "strata/cpu.h"

TestSuite(cpu);

Test(cpu, level_is_stable_and_bounded)
{
    st_cpu_isa a = st_cpu_level(), b = st_cpu_level();
    cr_assert_eq(a, b);
    cr_assert_leq((int)a, (int)st_cpu_detected());
    cr_assert_neq(strcmp(st_cpu_name(a), "?"), 0);
}

Test(cpu, cap_lowers_and_restores)
{
    st_cpu_isa before = st_cpu_level();
    st_cpu_cap(ST_CPU_SCALAR);
    cr_assert_eq(st_cpu_level(), ST_CPU_SCALAR);
    st_cpu_cap(ST_CPU_AVX2);
    cr_assert_leq((int)st_cpu_level(), (int)ST_CPU_AVX2);
    st_cpu_cap(ST_CPU_AVX512);
    cr_assert_eq(st_cpu_level(), before);
}
