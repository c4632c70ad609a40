/*
 * repl_ring.c - the backlog ring's allocation and reads (repl_ring.h);
 * the append is inline in the header.  It knows offsets and bytes, not
 * records, links or locks: repl_stream.c owns the one ring, under
 * out_lock.  t/check_repl_ring.c tests wrap, overrun and offsets.
 */
#include "repl_ring.h"

#include <stdlib.h>

int ring_init(struct repl_ring *r, size_t cap)
{
    r->cap = cap;
    r->end = 0;
    r->floor = 0;
    r->buf = cap ? malloc(cap) : NULL;
    if (cap && r->buf == NULL) {
        r->cap = 0;
        return -1;
    }
    return 0;
}

void ring_free(struct repl_ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    r->end = 0;
}

void ring_restore(struct repl_ring *r, uint64_t first, uint64_t end,
                  const char *data)
{
    uint64_t from = first;

    if (end - from > r->cap) {
        from = end - r->cap;        /* a smaller backlog now */
    }
    r->end = from;
    ring_put(r, data + (from - first), (size_t)(end - from));
    r->end = end;                   /* also with no backlog (cap 0) */
    r->floor = r->cap > 0 ? from : end;
}

bool ring_has(const struct repl_ring *r, uint64_t off)
{
    return r->cap > 0 && off <= r->end && off >= ring_start(r);
}

size_t ring_copy(const struct repl_ring *r, uint64_t from, size_t max,
                 struct rbuf *b)
{
    size_t done = 0;

    if (!ring_has(r, from)) {
        return 0;
    }
    while (from < r->end && done < max) {
        size_t k;
        const char *p = ring_span(r, from, r->end, &k);
        if (k > max - done) {
            k = max - done;
        }
        if (!rbuf_add(b, p, k)) {
            return 0;
        }
        from += k;
        done += k;
    }
    return done;
}
