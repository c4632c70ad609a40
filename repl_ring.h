/*
 * repl_ring.h - the backlog ring: the last `cap` bytes of this node's
 * record stream, addressed by stream offset, so that a peer that comes
 * back with an offset still in it gets only what it missed.  Pure: no
 * lock (repl_stream.c holds out_lock around every call), no I/O.
 */
#ifndef REPL_RING_H
#define REPL_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

struct repl_ring {
    char *buf;                  /* cap bytes; NULL when cap is 0 */
    size_t cap;                 /* its size; 0: no backlog */
    uint64_t end;               /* stream offset after the last byte put */
    uint64_t floor;             /* no offset below this is held: a ring
                                   restored from a memory file may hold
                                   less than cap (ring_restore) */
};

/* A ring of cap bytes (0: none, every put only moves end).  0, or -1 out
 * of memory. */
int ring_init(struct repl_ring *r, size_t cap);
void ring_free(struct repl_ring *r);

/* Append n bytes at offset end, overwriting the oldest.  Inline: the
 * mutation hook calls it for every write. */
static inline void ring_put(struct repl_ring *r, const char *p, size_t n)
{
    while (n > 0 && r->cap > 0) {
        size_t pos = (size_t)(r->end % r->cap);
        size_t k = r->cap - pos < n ? r->cap - pos : n;
        memcpy(r->buf + pos, p, k);
        r->end += k;
        p += k;
        n -= k;
    }
}

/* Oldest offset still in the ring. */
static inline uint64_t ring_start(const struct repl_ring *r)
{
    uint64_t start = r->end > r->cap ? r->end - r->cap : 0;

    return start > r->floor ? start : r->floor;
}

/* A warm restart (-e): the ring holds [first, end) from data (the last
 * cap bytes of it when it is longer), and nothing before. */
void ring_restore(struct repl_ring *r, uint64_t first, uint64_t end,
                  const char *data);
/* Whether offset off can still be read: start <= off <= end, in a ring
 * that exists. */
bool ring_has(const struct repl_ring *r, uint64_t off);

/* Append up to max bytes of [from, end) to b: how many, 0 when from is
 * no longer in the ring, is the end, or b cannot grow. */
size_t ring_copy(const struct repl_ring *r, uint64_t from, size_t max,
                 struct rbuf *b);

/* The bytes of [from, to) that lie in one piece from `from` on (up to
 * the wrap): *len of them at the pointer returned.  from must be in the
 * ring and to <= end. */
static inline const char *ring_span(const struct repl_ring *r, uint64_t from,
                                    uint64_t to, size_t *len)
{
    size_t pos = (size_t)(from % r->cap);
    size_t want = (size_t)(to - from);

    *len = want > r->cap - pos ? r->cap - pos : want;
    return r->buf + pos;
}

#endif
