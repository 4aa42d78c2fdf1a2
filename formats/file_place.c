/*
 * file_place.c: is a layer file where its footer says it belongs?
 *
 * A warehouse keeps <root>/<layer>/<table>.strata (and the same shape
 * under .staging/). The footer names the layer and table the file was
 * written for, so a file swapped with another, copied in from elsewhere
 * under another name or moved to another layer is recognisable without
 * any outside state. The check applies only where a path has that shape
 * (its directory is named after one of the warehouse layers and the name
 * ends in .strata); a file elsewhere, such as an export or a test
 * fixture, may be called anything.
 */
#include <stdio.h>
#include <string.h>

#include "strata/file.h"

static const char *const layers[] = {"bronze", "silver", "gold", "platinum"};

st_status st_file_check_place(const st_file_meta *m, const char *path, st_error *err)
{
    const char *base = strrchr(path, '/');
    if (!base) return ST_OK;
    size_t bl = strlen(base + 1);
    if (bl <= 7 || strcmp(base + 1 + bl - 7, ".strata") != 0) return ST_OK;
    const char *dir = base;
    while (dir > path && dir[-1] != '/') dir--;
    size_t dl = (size_t)(base - dir);
    bool in_layer = false;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        in_layer |= strlen(layers[i]) == dl && !memcmp(layers[i], dir, dl);
    if (!in_layer) return ST_OK;
    const char *layer = m->layer ? m->layer : "", *table = m->table ? m->table : "";
    if (strlen(layer) == dl && !memcmp(layer, dir, dl) && strlen(table) == bl - 7 && !memcmp(table, base + 1, bl - 7))
        return ST_OK;
    return st_error_set(err, ST_ERR_CORRUPT,
                        "'%s' holds %s.%s, not %.*s.%.*s: a misplaced file (put the right file back, or rebuild "
                        "with strata run --force)",
                        path, layer, table, (int)dl, dir, (int)(bl - 7), base + 1);
}
