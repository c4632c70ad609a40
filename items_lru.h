/*
 * items_lru.h - the per-class segmented LRU as the rest of the server sees
 * it: segment names, the counters of stats items, the maintainer's pass,
 * cachedump and the crawler's tally (items_lru.c).
 */
#ifndef ITEMS_LRU_H
#define ITEMS_LRU_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/*
 * memcached's segmented LRU: each class has four lists.  New items go to
 * HOT (TEMP when temp_lru is on and their TTL is short); the maintainer
 * thread moves HOT and WARM tails to COLD when a list is over its share
 * of the class or too old; an item read twice (ACTIVE) in COLD moves to
 * WARM; evictions take COLD's tail.  With one flat LRU (no_modern, `lru
 * mode flat`) every item is linked into COLD.
 */
enum lru_seg {
    LRU_HOT,
    LRU_WARM,
    LRU_COLD,
    LRU_TEMP,
    LRU_NSEGS
};

/* Per-class LRU counters, for stats items. */
struct lru_stats {
    uint64_t number;            /* items linked in this class */
    uint64_t number_seg[LRU_NSEGS]; /* ... in each segment */
    uint64_t age;               /* seconds since COLD's tail was accessed */
    uint64_t age_hot;           /* same for HOT's tail */
    uint64_t age_warm;          /* same for WARM's tail */
    uint64_t moves_to_cold;     /* HOT/WARM tails sent to COLD */
    uint64_t moves_to_warm;     /* active items sent to WARM */
    uint64_t evicted;           /* live items evicted */
    uint64_t evicted_nonzero;   /* ... that had an expiry time */
    uint64_t evicted_time;      /* age of the last evicted item */
    uint64_t evicted_unfetched; /* evicted without ever being read */
    uint64_t evicted_active;    /* evicted although recently active */
    uint64_t outofmemory;       /* allocations that failed */
    uint64_t tailrepairs;       /* always 0: no leaked references here */
    uint64_t reclaimed;         /* expired items reused at allocation */
    uint64_t expired_unfetched; /* reclaimed without ever being read */
    uint64_t crawler_reclaimed; /* reclaimed by the crawler */
    uint64_t crawler_items_checked; /* looked at by the crawler */
    uint64_t lrutail_reflocked; /* tail items skipped: in use */
    uint64_t moves_within_lru;  /* bumps to the head of the same list */
    uint64_t direct_reclaims;   /* allocations that had to evict */
    uint64_t bytes;             /* bytes of linked items */
};
void items_lru_stats(unsigned id, struct lru_stats *out);
/* Totals over all classes. */
void items_lru_totals(struct lru_stats *out);
/* stats items and stats sizes output. */
void items_stats(struct strbuf *sb);
void items_stats_sizes(struct strbuf *sb);
uint64_t items_curr(void);
/* stats reset: zero the per-class counters (not the item counts). */
void items_reset_lru_stats(void);
/* One pass of the LRU maintainer over class id: reclaim dead tails, move
 * HOT/WARM tails to COLD and active COLD items to WARM.  Returns how much
 * it did (0: nothing to do). */
int items_lru_juggle(unsigned id);
/* Add what a crawler slice checked and reclaimed in class id (crawler.c). */
void items_count_crawl(unsigned id, uint64_t checked, uint64_t reclaimed);
/* stats cachedump: newest first; false for a bad class. */
bool items_cachedump(unsigned id, unsigned limit, struct strbuf *sb);

#endif
