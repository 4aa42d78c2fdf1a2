/*
 * crc32c.c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every block and footer. Both versions give the standard
 * CRC-32C: init ~0, final xor ~0 (crc32c("123456789") = 0xE3069283),
 * chained by passing the previous result as `crc`.
 *
 * The table version (8 bytes a step, "slicing by 8") is the specification
 * and the fallback. Where the CPU has SSE4.2 (chosen once at run time)
 * the crc32 instruction does 8 bytes a step; it takes 3 cycles but can
 * start one per cycle, so long buffers are cut into three equal streams
 * whose CRCs run interleaved and are then joined: CRC is linear, so the
 * register after A||B is Z(crc after A) ^ (crc of B from 0), where Z
 * appends |B| zero bytes. Z is a 32x32 bit matrix over GF(2), applied
 * here as four 256-entry tables (one per byte of the register), built
 * once for each of the two stream lengths used (LONG_LEN, SHORT_LEN).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "format_internal.h"
#include "strata/file.h"

#define LONG_LEN 8192u /* bytes per stream, buffers of 3 * LONG_LEN and more */
#define SHORT_LEN 256u /* bytes per stream below that */

static uint32_t table[8][256];
static uint32_t zeros_long[4][256], zeros_short[4][256]; /* Z for LONG_LEN and SHORT_LEN zero bytes */
static int have_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The CRC register (no inversions) after the n bytes at p from crc. */
static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t a = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = table[7][a & 0xff] ^ table[6][(a >> 8) & 0xff] ^ table[5][(a >> 16) & 0xff] ^ table[4][a >> 24] ^
              table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

/* The tables of Z for len zero bytes: Z of each of the 32 one-bit
 * registers by running the table CRC, then every byte value as the xor
 * of its bits' images. */
static void build_zeros(uint32_t z[4][256], size_t len)
{
    static const uint8_t zero[LONG_LEN];
    uint32_t bit[32];
    for (int i = 0; i < 32; i++) bit[i] = crc_sw((uint32_t)1 << i, zero, len);
    for (int k = 0; k < 4; k++) {
        z[k][0] = 0;
        for (unsigned b = 1; b < 256; b++) z[k][b] = z[k][b & (b - 1)] ^ bit[8 * k + __builtin_ctz(b)];
    }
}

static void init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    build_zeros(zeros_long, LONG_LEN);
    build_zeros(zeros_short, SHORT_LEN);
#if defined(__x86_64__)
    have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

#if defined(__x86_64__)
static inline uint32_t zeros(const uint32_t z[4][256], uint32_t c)
{
    return z[0][c & 0xff] ^ z[1][(c >> 8) & 0xff] ^ z[2][(c >> 16) & 0xff] ^ z[3][c >> 24];
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The register after 3 * len bytes at p from c (len a multiple of 8):
 * three interleaved streams joined by Z (see the top of the file). */
__attribute__((target("sse4.2"))) static inline uint32_t three_way(uint32_t c, const uint8_t *p, size_t len,
                                                                   const uint32_t z[4][256])
{
    uint64_t c0 = c, c1 = 0, c2 = 0;
    for (size_t k = 0; k < len; k += 8) {
        c0 = __builtin_ia32_crc32di(c0, load64(p + k));
        c1 = __builtin_ia32_crc32di(c1, load64(p + len + k));
        c2 = __builtin_ia32_crc32di(c2, load64(p + 2 * len + k));
    }
    uint32_t r = zeros(z, (uint32_t)c0) ^ (uint32_t)c1;
    return zeros(z, r) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    for (; n >= 3 * LONG_LEN; p += 3 * LONG_LEN, n -= 3 * LONG_LEN) crc = three_way(crc, p, LONG_LEN, zeros_long);
    for (; n >= 3 * SHORT_LEN; p += 3 * SHORT_LEN, n -= 3 * SHORT_LEN) crc = three_way(crc, p, SHORT_LEN, zeros_short);
    uint64_t c = crc;
    for (; n >= 8; p += 8, n -= 8) c = __builtin_ia32_crc32di(c, load64(p));
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t st_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
#if defined(__x86_64__)
    if (have_hw) return ~crc_hw(~crc, buf, len);
#endif
    return ~crc_sw(~crc, buf, len);
}

uint32_t st_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
    return ~crc_sw(~crc, buf, len);
}
