/*
 * items_digest.c - the pair digest (`stats replication digest`): an
 * order-independent sum over every live item, taken a slice of the hash
 * table at a time.  Reads items only; changes nothing.
 */
#include "memcached.h"
#include "items.h"
#include "items_digest.h"
#include "items_internal.h"
#include "assoc.h"
#include "hash.h"

#include <stdlib.h>

/* --- pair digest -----------------------------------------------------------
 * Each live item hashes to 64 bits; the digest is their sum modulo 2^64,
 * so it does not depend on the order of the walk.  Each slice takes the
 * walk lock and one stripe lock at a time (assoc_walk_buckets).
 */
static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Dead by unix time t: expired, or flushed, by then. */
static bool dead_by(const struct item *it, uint32_t t)
{
    uint64_t cutoff = __atomic_load_n(&flush_cutoff, __ATOMIC_ACQUIRE);

    return (it->exptime != 0 && it->exptime <= t) ||
           (cutoff != 0 && it->version < cutoff && flush_at <= t);
}

/* murmur3 of the value without its "\r\n"; a chunked one is copied
 * out first, so that the digest does not depend on slab_chunk_max. */
static uint32_t value_hash(const struct item *it)
{
    size_t n = it->nbytes - 2;
    uint32_t h;
    char *buf;

    if (!item_is_chunked(it)) {
        return hash_murmur3(ITEM_data(it), n);
    }
    buf = malloc(n);
    if (buf == NULL) {
        return 0;
    }
    item_value_read(it, 0, buf, n);
    h = hash_murmur3(buf, n);
    free(buf);
    return h;
}

static bool digest_cb(struct item *it, void *arg)
{
    struct digest_walk *d = arg;
    uint64_t h;

    if ((it->it_flags & ITEM_TOMBSTONE) ||
        (d->until == 0 ? item_is_dead(it) : dead_by(it, d->until))) {
        return true;
    }
    /* murmur3 whatever -o hash_algorithm says: both nodes must agree. */
    h = mix64(((uint64_t)hash_murmur3(ITEM_key(it), it->nkey) << 32) |
              value_hash(it));
    h = mix64(h ^ it->version);
    h = mix64(h ^ (((uint64_t)it->flags << 32) | it->exptime));
    h = mix64(h ^ it->nbytes);
    d->sum += h;
    d->count++;
    return true;
}

void items_digest_begin(struct digest_walk *d)
{
    d->sum = 0;
    d->count = 0;
    d->next = 0;
    d->power = assoc_hashpower();
    d->until = 0;
}

/* Start over (the table doubled), keeping d->until. */
static void digest_restart(struct digest_walk *d)
{
    uint32_t until = d->until;

    items_digest_begin(d);
    d->until = until;
}

bool items_digest_step(struct digest_walk *d, uint64_t buckets)
{
    uint64_t next;

    if (assoc_hashpower() != d->power) {
        digest_restart(d);
    }
    next = assoc_walk_buckets(d->next, buckets, digest_cb, d);
    if (assoc_hashpower() != d->power) {
        /* The table doubled before this slice took the walk lock: its
         * buckets were numbered anew, and items already summed may have
         * moved ahead of the walk.  Only a fresh walk counts each once. */
        digest_restart(d);
        return false;
    }
    d->next = next;
    return next == 0;
}
