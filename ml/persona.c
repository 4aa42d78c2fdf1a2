/*
 * persona.c: business names for clusters, and the user's override file.
 *
 * The rule works on centroids in original units, so it reads like the
 * business question it answers (see st_persona_rule_text()). It is
 * deterministic: every tie is broken by a fixed secondary key and then by
 * the lower cluster index.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strata/ml.h"
#include "strata/utf8.h"

static const char rule_text[] =
    "Each cluster is named from its centroid in original units. Potentials: the cluster with the highest "
    "free-of-charge share (foc_ratio): promotion-driven, to be developed. Champions: of the rest, the "
    "cluster ranking highest on sales volume (total_sold_quantity) plus frequency (total_sold_transactions), "
    "ties going to the lower free-of-charge share: grow them. Loyalists: of the rest, the cluster with the "
    "most customer-periods: the large reliable base. Any further cluster is 'Segment N', numbered from 4 by "
    "decreasing sales volume. Months with no activity are 'Not Active' and are not clustered. With one "
    "cluster it is Loyalists; with two, Champions and Potentials.";

const char *st_persona_rule_text(void) { return rule_text; }

static int find(const char *const *features, size_t d, const char *name)
{
    for (size_t j = 0; j < d; j++)
        if (!strcmp(features[j], name)) return (int)j;
    return -1;
}

void st_persona_name(const char *const *features, size_t d, const double *c, const int64_t *sizes, int k,
                     char names[][64])
{
    int f_vol = find(features, d, "total_sold_quantity");
    int f_freq = find(features, d, "total_sold_transactions");
    int f_foc = find(features, d, "foc_ratio");
    if (f_vol < 0 && f_freq < 0) f_vol = 0; /* no volume or frequency: rank on the first feature */
    bool taken[ST_ML_MAX_K] = {false};
    for (int q = 0; q < k; q++) names[q][0] = '\0';
    if (k == 1) {
        snprintf(names[0], 64, "Loyalists");
        return;
    }
#define V(q, f) (c[(size_t)(q) * d + (size_t)(f)])
    /* Potentials: highest foc_ratio */
    if (f_foc >= 0) {
        int p = 0;
        for (int q = 1; q < k; q++)
            if (V(q, f_foc) > V(p, f_foc)) p = q;
        snprintf(names[p], 64, "Potentials");
        taken[p] = true;
    }
    /* Champions: best rank sum of volume and frequency among the rest */
    {
        int best = -1;
        double best_score = 0;
        for (int q = 0; q < k; q++) {
            if (taken[q]) continue;
            double score = 0;
            for (int r = 0; r < k; r++) {
                if (f_vol >= 0 && V(q, f_vol) > V(r, f_vol)) score += 1;
                if (f_freq >= 0 && V(q, f_freq) > V(r, f_freq)) score += 1;
            }
            bool better = best < 0 || score > best_score;
            if (!better && score == best_score && f_foc >= 0 && V(q, f_foc) < V(best, f_foc)) better = true;
            if (better) {
                best = q;
                best_score = score;
            }
        }
        if (best >= 0) {
            snprintf(names[best], 64, "Champions");
            taken[best] = true;
        }
    }
    /* Loyalists: the largest of the rest (only when k >= 3) */
    if (k >= 3 || f_foc < 0) {
        int best = -1;
        for (int q = 0; q < k; q++)
            if (!taken[q] && (best < 0 || sizes[q] > sizes[best])) best = q;
        if (best >= 0) {
            snprintf(names[best], 64, "Loyalists");
            taken[best] = true;
        }
    }
    /* the rest: Segment 4, 5, ... by decreasing volume */
    int next = 4;
    for (;;) {
        int best = -1;
        for (int q = 0; q < k; q++) {
            if (taken[q]) continue;
            if (best < 0) best = q;
            else if (f_vol >= 0 && V(q, f_vol) > V(best, f_vol)) best = q;
        }
        if (best < 0) break;
        snprintf(names[best], 64, "Segment %d", next++);
        taken[best] = true;
    }
#undef V
}

st_status st_persona_map_parse(const char *text, size_t len, const char *fname, int k, char names[][64], st_error *err)
{
    size_t at = 0;
    int line = 0;
    char tmp[ST_ML_MAX_K][64];
    bool set[ST_ML_MAX_K] = {false};
    while (at < len) {
        line++;
        size_t end = at;
        while (end < len && text[end] != '\n') end++;
        const char *p = text + at, *e = text + end;
        at = end + 1;
        /* strip comment and whitespace */
        const char *hash = memchr(p, '#', (size_t)(e - p));
        if (hash) e = hash;
        while (p < e && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
        if (p == e) continue;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (!eq) return st_error_set(err, ST_ERR_INVALID, "%s:%d: expected '<cluster> = <persona name>'", fname, line);
        const char *ie = eq;
        while (ie > p && (ie[-1] == ' ' || ie[-1] == '\t')) ie--;
        if (ie == p) return st_error_set(err, ST_ERR_INVALID, "%s:%d: missing cluster index before '='", fname, line);
        long idx = 0;
        for (const char *q = p; q < ie; q++) {
            if (*q < '0' || *q > '9' || idx > 1000)
                return st_error_set(err, ST_ERR_INVALID, "%s:%d: cluster index must be a number", fname, line);
            idx = idx * 10 + (*q - '0');
        }
        if (idx >= k)
            return st_error_set(err, ST_ERR_INVALID, "%s:%d: cluster %ld does not exist (k = %d: clusters 0..%d)", fname,
                                line, idx, k, k - 1);
        const char *ns = eq + 1;
        while (ns < e && (*ns == ' ' || *ns == '\t')) ns++;
        size_t nl = (size_t)(e - ns);
        if (nl == 0 || nl > 63) return st_error_set(err, ST_ERR_INVALID, "%s:%d: persona name must be 1..63 bytes", fname, line);
        if (!st_utf8_valid(ns, nl))
            return st_error_set(err, ST_ERR_INVALID, "%s:%d: persona name is not valid UTF-8", fname, line);
        for (size_t q = 0; q < nl; q++)
            if ((unsigned char)ns[q] < 0x20 || ns[q] == 0x7f)
                return st_error_set(err, ST_ERR_INVALID, "%s:%d: persona name has a control character", fname, line);
        if (set[idx]) return st_error_set(err, ST_ERR_INVALID, "%s:%d: cluster %ld is named twice", fname, line, idx);
        if (nl == 10 && !strncasecmp(ns, "Not Active", 10))
            return st_error_set(err, ST_ERR_INVALID, "%s:%d: 'Not Active' is the name of months without activity; "
                                "a cluster needs another name", fname, line);
        memcpy(tmp[idx], ns, nl);
        tmp[idx][nl] = '\0';
        set[idx] = true;
    }
    for (int q = 0; q < k; q++)
        if (set[q]) memcpy(names[q], tmp[q], 64);
    return ST_OK;
}

st_status st_persona_map_load(const char *path, int k, char names[][64], st_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return st_error_set(err, ST_ERR_NOTFOUND, "cannot open persona map '%s': %s", path, strerror(errno));
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (more) return st_error_set(err, ST_ERR_INVALID, "persona map '%s' is larger than 64 KiB", path);
    return st_persona_map_parse(buf, n, path, k, names, err);
}
