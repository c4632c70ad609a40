/*
 * slab_automove.h - slab_automove: deciding which slab page to move
 * where, from per-class samples taken about once a second.  The decision
 * is pure logic (unit tested); slab_automove_tick() samples the live
 * classes and starts the move.
 */
#ifndef SLAB_AUTOMOVE_H
#define SLAB_AUTOMOVE_H

#include <stdbool.h>
#include <stdint.h>

#include "slabs.h"

/* One class as the decision sees it. */
struct am_sample {
    uint64_t evicted;           /* evictions so far (a counter) */
    uint64_t outofmemory;       /* failed allocations so far */
    uint64_t total_pages;       /* pages owned now */
    uint64_t free_chunks;       /* free chunks now */
    uint64_t chunks_per_page;   /* chunks in one page */
    uint64_t age;               /* seconds since COLD's tail was used */
};

/* One class's record of one sample in the window. */
struct am_slot {
    uint64_t age;               /* its age then */
    bool dirty;                 /* it evicted, ran out or grew */
    bool evicted;               /* it evicted */
    double evicted_share;       /* its share of all evictions then */
};

struct automove {
    unsigned window;            /* samples per window (>= 1) */
    uint64_t runs;              /* samples taken */
    double ratio;               /* youngest/oldest age ratio to act on */
    struct am_sample before[SLABS_MAX_CLASSES];     /* the last sample */
    struct am_slot *slots;      /* SLABS_MAX_CLASSES x window */
};

/* 0, or -1 without memory. */
int automove_init(struct automove *a, unsigned window, double ratio);
void automove_free(struct automove *a);
/*
 * memcached's slab_automove=1 rule, on a new sample of classes 1..n:
 * a class holding more than 2.5 pages of free chunks whose window saw no
 * eviction, failed allocation or new page gives a page to the global
 * pool (*dst = 0).  Otherwise, once the window has filled, the class
 * evicting most (youngest COLD age, evicting in more than half the
 * window or taking more than a quarter of the evictions) takes a page
 * from the class whose items are oldest (more than 2 pages), when the
 * youngest age is below ratio times the oldest.  *src = *dst = -1: none.
 */
void automove_decide(struct automove *a, const struct am_sample *now,
                     unsigned n, int *src, int *dst);

/* Sample the live classes, decide with slab_automove's mode, and start
 * the move.  Returns true when a page went (or is going) to the global
 * pool: call again soon rather than in a second. */
bool slab_automove_tick(void);

#endif
