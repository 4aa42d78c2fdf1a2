/*
 * hash.c: st_hash64, the 64-bit hash behind fingerprints and hash
 * tables. A multiply-rotate mix over 8-byte little-endian words, fixed
 * so fingerprints written in files mean the same on every machine. Not
 * cryptographic: it detects change, it does not resist an adversary.
 */
#include <stdint.h>
#include <string.h>

#include "strata/file.h"

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= P2;
    x ^= x >> 29;
    x *= P3;
    x ^= x >> 32;
    return x;
}

uint64_t st_hash64(uint64_t seed, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t a = seed ^ P1, b = seed + P2 + len, c = rotl(seed, 17) ^ P3, d = seed - P1;
    while (len >= 32) {
        uint64_t w[4];
        memcpy(w, p, 32);
        a = rotl(a + w[0] * P2, 31) * P1;
        b = rotl(b + w[1] * P2, 31) * P1;
        c = rotl(c + w[2] * P2, 31) * P1;
        d = rotl(d + w[3] * P2, 31) * P1;
        p += 32;
        len -= 32;
    }
    uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = rotl(h ^ (rotl(w * P2, 31) * P1), 27) * P1 + P3;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    for (size_t i = 0; i < len; i++) tail |= (uint64_t)p[i] << (8 * i);
    h ^= (tail + len) * P3;
    return mix(h);
}
