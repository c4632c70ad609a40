/*
 * hash.c - the two key hash functions memcached offers: MurmurHash3
 * (x86, 32-bit; default) and Bob Jenkins' one-at-a-time.  Both are written
 * from their published descriptions.
 */
#include "hash.h"

#include <string.h>

hash_fn hash = hash_murmur3;

static inline uint32_t rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static inline uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bU;
    h ^= h >> 13;
    h *= 0xc2b2ae35U;
    h ^= h >> 16;
    return h;
}

uint32_t hash_murmur3(const void *key, size_t length)
{
    const uint8_t *p = key;
    const uint32_t c1 = 0xcc9e2d51U;
    const uint32_t c2 = 0x1b873593U;
    size_t nblocks = length / 4;
    uint32_t h = 0;
    uint32_t k;
    size_t i;

    for (i = 0; i < nblocks; i++) {
        memcpy(&k, p + i * 4, 4);
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5 + 0xe6546b64U;
    }
    p += nblocks * 4;
    k = 0;
    switch (length & 3) {
    case 3:
        k ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        k ^= p[0];
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        break;
    default:
        break;
    }
    h ^= (uint32_t)length;
    return fmix32(h);
}

uint32_t hash_jenkins(const void *key, size_t length)
{
    const uint8_t *p = key;
    uint32_t h = 0;
    size_t i;

    for (i = 0; i < length; i++) {
        h += p[i];
        h += h << 10;
        h ^= h >> 6;
    }
    h += h << 3;
    h ^= h >> 11;
    h += h << 15;
    return h;
}

int hash_init(const char *name)
{
    if (name == NULL || strcmp(name, "murmur3") == 0) {
        hash = hash_murmur3;
    } else if (strcmp(name, "jenkins") == 0) {
        hash = hash_jenkins;
    } else {
        return -1;
    }
    return 0;
}
