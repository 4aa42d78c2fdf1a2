/*
 * test_clean.c: customer field cleaning rules.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "clean_internal.h"

TestSuite(clean);

Test(clean, trim)
{
    const char *t;
    size_t n;
    st_clean_trim("  \t a b \n", 9, &t, &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(memcmp(t, "a b", 3), 0);
    st_clean_trim("   ", 3, &t, &n);
    cr_assert_eq(n, 0);
    st_clean_trim("", 0, &t, &n);
    cr_assert_eq(n, 0);
}

static void email(const char *in, const char *want, bool want_valid)
{
    char out[128];
    bool valid;
    size_t n = st_clean_email(in, strlen(in), out, sizeof out, &valid);
    out[n] = '\0';
    cr_expect_str_eq(out, want, "email '%s'", in);
    cr_expect_eq(valid, want_valid, "email '%s' validity", in);
}

Test(clean, email)
{
    email(" Luisg@Embraer.com.br ", "luisg@embraer.com.br", true);
    email("a@b.co", "a@b.co", true);
    email("no-at-sign.com", "no-at-sign.com", false);
    email("two@@x.com", "two@@x.com", false);
    email("@x.com", "@x.com", false);
    email("a@", "a@", false);
    email("a@nodot", "a@nodot", false);
    email("a@.x.com", "a@.x.com", false);
    email("a@x..com", "a@x..com", false);
    email("a b@x.com", "a b@x.com", false);
    email("", "", false);
}

static void country(const char *in, const char *want)
{
    char out[128];
    size_t n = st_clean_country(in, strlen(in), out, sizeof out);
    out[n] = '\0';
    cr_expect_str_eq(out, want, "country '%s'", in);
}

Test(clean, country)
{
    country("USA", "United States");
    country(" u.s.a. ", "United States");
    country("United States of America", "United States");
    country("UK", "United Kingdom");
    country("Brazil", "Brazil");
    country("  Czech   Republic ", "Czech Republic");
    country("Deutschland", "Germany");
    country("Atlantis", "Atlantis");
}
