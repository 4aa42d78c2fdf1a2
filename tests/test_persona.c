/*
 * test_persona.c: persona naming on hand-made centroids (every rule of
 * st_persona_rule_text(), missing features, k = 1 and 2) and the strict
 * override file parser (good lines, every kind of bad line with its line
 * number).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "strata/ml.h"

TestSuite(persona);

Test(persona, names_follow_the_rule)
{
    const char *f[3] = {"total_sold_quantity", "foc_ratio", "total_sold_transactions"};
    /* cluster 0: big, low foc -> Champions; 1: high foc -> Potentials; 2: the base -> Loyalists; 3: small -> Segment 4 */
    double c[4 * 3] = {9000, 0.01, 120, 800, 0.5, 20, 1500, 0.1, 30, 100, 0.05, 3};
    int64_t sizes[4] = {100, 300, 2000, 50};
    char names[4][64];
    st_persona_name(f, 3, c, sizes, 4, names);
    cr_assert_str_eq(names[0], "Champions");
    cr_assert_str_eq(names[1], "Potentials");
    cr_assert_str_eq(names[2], "Loyalists");
    cr_assert_str_eq(names[3], "Segment 4");
    st_persona_name(f, 3, c, sizes, 1, names);
    cr_assert_str_eq(names[0], "Loyalists");
    st_persona_name(f, 3, c, sizes, 2, names);
    cr_assert_str_eq(names[0], "Champions");
    cr_assert_str_eq(names[1], "Potentials");
    cr_assert_not_null(strstr(st_persona_rule_text(), "Potentials"));
}

Test(persona, map_parser_good_and_bad_lines)
{
    char names[3][64] = {"A", "B", "C"};
    st_error err;
    const char *good = "# my names\n0 = Key accounts\n\n2=Promo hunters   # trailing comment\n";
    cr_assert_eq(st_persona_map_parse(good, strlen(good), "m.txt", 3, names, &err), ST_OK, "%s", err.msg);
    cr_assert_str_eq(names[0], "Key accounts");
    cr_assert_str_eq(names[1], "B");
    cr_assert_str_eq(names[2], "Promo hunters");
    struct {
        const char *text, *want;
    } bad[] = {{"0 Key\n", "m.txt:1: expected"},
               {"\n\n5 = X\n", "m.txt:3: cluster 5 does not exist"},
               {"x = Y\n", "must be a number"},
               {"0 = \n", "1..63 bytes"},
               {"0 = A\n0 = B\n", "named twice"},
               {"1 = \xff\n", "UTF-8"},
               {" = A\n", "missing cluster index"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(st_persona_map_parse(bad[i].text, strlen(bad[i].text), "m.txt", 3, names, &err), ST_ERR_INVALID,
                     "case %zu accepted", i);
        cr_assert_not_null(strstr(err.msg, bad[i].want), "case %zu: '%s' lacks '%s'", i, err.msg, bad[i].want);
    }
}

Test(persona, without_foc_ratio_and_with_crlf_map)
{
    const char *f[2] = {"total_sold_quantity", "total_sold_transactions"};
    double c[3 * 2] = {10, 1, 500, 40, 60, 8};
    int64_t sizes[3] = {1000, 20, 300};
    char names[3][64];
    st_persona_name(f, 2, c, sizes, 3, names);
    cr_assert_str_eq(names[1], "Champions");
    cr_assert_str_eq(names[0], "Loyalists");
    cr_assert_str_eq(names[2], "Segment 4");
    st_error err;
    const char *m = "1 = VIP\r\n\r\n# done\r\n";
    cr_assert_eq(st_persona_map_parse(m, strlen(m), "m.txt", 3, names, &err), ST_OK, "%s", err.msg);
    cr_assert_str_eq(names[1], "VIP");
    const char *nul = "0 = A\0B\n";
    cr_assert_eq(st_persona_map_parse(nul, 8, "m.txt", 3, names, &err), ST_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "m.txt:1"), "%s", err.msg);
}
