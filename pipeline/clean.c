/*
 * clean.c: field cleaning for the customer master (silver.stg_customers):
 * whitespace trimming, e-mail normalisation and validation, and country
 * standardisation. Pure functions over (s, len) that write into a caller
 * buffer; no allocation.
 *
 * Country standardisation maps common spellings and abbreviations to one
 * English short name (ISO 3166 style), e.g. "USA", "U.S.", "United States
 * of America" -> "United States"; unknown values keep their trimmed
 * spelling with inner runs of spaces folded, so nothing is invented.
 */
#include "clean_internal.h"

#include <ctype.h>
#include <string.h>

void st_clean_trim(const char *s, size_t len, const char **out, size_t *out_len)
{
    size_t a = 0, b = len;
    while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' || s[a] == '\r' || s[a] == '\f' || s[a] == '\v')) a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\n' || s[b - 1] == '\r' || s[b - 1] == '\f' ||
                     s[b - 1] == '\v'))
        b--;
    *out = s + a;
    *out_len = b - a;
}

size_t st_clean_email(const char *s, size_t len, char *out, size_t cap, bool *valid)
{
    const char *t;
    size_t n;
    st_clean_trim(s, len, &t, &n);
    if (n > cap) n = cap;
    for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)t[i]);
    /* valid: exactly one '@', non-empty local part, a domain with a dot
     * that neither starts nor ends the domain, no spaces or controls. */
    size_t at = n, ats = 0;
    bool ok = n > 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c == '@') {
            ats++;
            at = i;
        } else if (c <= ' ' || c == 0x7f || c == ',' || c == ';' || c == '<' || c == '>') {
            ok = false;
        }
    }
    if (ats != 1 || at == 0 || at + 1 >= n) ok = false;
    if (ok) {
        const char *dom = out + at + 1;
        size_t dl = n - at - 1;
        const char *dot = memchr(dom, '.', dl);
        if (!dot || dom[0] == '.' || dom[dl - 1] == '.' || memmem(dom, dl, "..", 2)) ok = false;
    }
    *valid = ok;
    return n;
}

typedef struct alias {
    const char *from; /* lower-case, dots and spaces removed */
    const char *to;
} alias;

static const alias aliases[] = {
    {"usa", "United States"},          {"us", "United States"},
    {"unitedstates", "United States"}, {"unitedstatesofamerica", "United States"},
    {"america", "United States"},      {"uk", "United Kingdom"},
    {"gb", "United Kingdom"},          {"greatbritain", "United Kingdom"},
    {"unitedkingdom", "United Kingdom"}, {"england", "United Kingdom"},
    {"deutschland", "Germany"},        {"de", "Germany"},
    {"brasil", "Brazil"},              {"br", "Brazil"},
    {"espana", "Spain"},               {"españa", "Spain"},
    {"italia", "Italy"},               {"nederland", "Netherlands"},
    {"thenetherlands", "Netherlands"}, {"holland", "Netherlands"},
    {"polska", "Poland"},              {"sverige", "Sweden"},
    {"norge", "Norway"},               {"danmark", "Denmark"},
    {"suomi", "Finland"},              {"österreich", "Austria"},
    {"czechia", "Czech Republic"},     {"ceskarepublika", "Czech Republic"},
    {"magyarorszag", "Hungary"},       {"éire", "Ireland"},
    {"eire", "Ireland"},               {"ca", "Canada"},
    {"fr", "France"},                  {"in", "India"},
    {"bharat", "India"},               {"au", "Australia"},
};

size_t st_clean_country(const char *s, size_t len, char *out, size_t cap)
{
    const char *t;
    size_t n;
    st_clean_trim(s, len, &t, &n);
    /* key: lower-case, without dots and spaces */
    char key[128];
    size_t kl = 0;
    for (size_t i = 0; i < n && kl < sizeof key - 1; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '.' || c == ' ' || c == '\t') continue;
        key[kl++] = (char)tolower(c);
    }
    key[kl] = '\0';
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(key, aliases[i].from)) {
            size_t l = strlen(aliases[i].to);
            if (l > cap) l = cap;
            memcpy(out, aliases[i].to, l);
            return l;
        }
    /* fold inner whitespace runs */
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n && o < cap; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = true;
            continue;
        }
        if (space && o < cap) out[o++] = ' ';
        space = false;
        if (o < cap) out[o++] = (char)c;
    }
    return o;
}
