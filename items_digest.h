/*
 * items_digest.h - the pair digest over every live item, summed a slice
 * of the hash table at a time (items_digest.c).
 */
#ifndef ITEMS_DIGEST_H
#define ITEMS_DIGEST_H

#include <stdbool.h>
#include <stdint.h>

/* The pair digest (`stats replication digest`): an order-independent
 * digest of every live item (key, value, flags, deadline, version),
 * equal on two nodes holding the same data.  Summed a slice of the hash
 * table at a time, so that the worker computing it goes on serving its
 * other connections in between; each live item is counted once even if
 * the table doubles meanwhile (the walk then starts over). */
struct digest_walk {
    uint64_t sum;               /* the digest so far */
    uint64_t count;             /* live items summed */
    uint64_t next;              /* first bucket of the next slice */
    unsigned power;             /* table size (log2) the walk is on */
    uint32_t until;             /* count only items alive through this
                                   unix time; 0 (begin's): now */
};
void items_digest_begin(struct digest_walk *d);
/* Sum up to `buckets` more buckets; true when d holds the digest. */
bool items_digest_step(struct digest_walk *d, uint64_t buckets);

#endif
