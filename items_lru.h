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

/*
 * The per-class LRU counters and the lines of `stats items` and of the
 * LRU part of `stats` they print, declared once, in the order printed:
 *   COUNTER(name, in_stats, what)  a uint64_t of struct lru_stats, summed
 *           over the classes by items_lru_totals(); stats items prints
 *           it as items:<id>:name (items_lru.c), and stats (stats.c) as
 *           name as in_stats says: NO, ALWAYS or MAINT (with the LRU
 *           maintainer)
 *   LAST(name, what)  a uint64_t of struct lru_stats that stats items
 *           prints and that is no sum: of the class only
 *   STATS(name, field)  a line of stats only: the total of a counter
 *           under another name, at its place in stats
 * Each order is memcached 1.6's: tools parse these lines.
 */
#define LRU_STATS(COUNTER, LAST, STATS)                                   \
    COUNTER(evicted, NO, "live items evicted")                            \
    COUNTER(evicted_nonzero, NO, "... that had an expiry time")           \
    LAST(evicted_time, "age of the last evicted item")                    \
    COUNTER(outofmemory, NO, "allocations that failed")                   \
    COUNTER(tailrepairs, NO, "always 0: no leaked references here")       \
    COUNTER(reclaimed, NO, "expired items reused at allocation")          \
    COUNTER(expired_unfetched, ALWAYS, "reclaimed without being read")    \
    COUNTER(evicted_unfetched, ALWAYS, "evicted without being read")      \
    COUNTER(evicted_active, MAINT, "evicted although recently active")    \
    STATS(evictions, evicted)                                             \
    STATS(reclaimed, reclaimed)                                           \
    COUNTER(crawler_reclaimed, ALWAYS, "reclaimed by the crawler")        \
    COUNTER(crawler_items_checked, ALWAYS, "looked at by the crawler")    \
    COUNTER(lrutail_reflocked, ALWAYS, "tail items skipped: in use")      \
    COUNTER(moves_to_cold, MAINT, "HOT/WARM tails sent to COLD")     \
    COUNTER(moves_to_warm, MAINT, "active items sent to WARM")       \
    COUNTER(moves_within_lru, MAINT, "bumps to the head of the same list") \
    COUNTER(direct_reclaims, MAINT, "allocations that had to evict")

#define LRU_STAT_FIELD(name, ...) uint64_t name;
#define LRU_STAT_NONE(...)
/* Per-class LRU counters, for stats items. */
struct lru_stats {
    uint64_t number;            /* items linked in this class */
    uint64_t number_seg[LRU_NSEGS]; /* ... in each segment */
    uint64_t age;               /* seconds since COLD's tail was accessed */
    uint64_t age_hot;           /* same for HOT's tail */
    uint64_t age_warm;          /* same for WARM's tail */
    uint64_t bytes;             /* bytes of linked items */
    LRU_STATS(LRU_STAT_FIELD, LRU_STAT_FIELD, LRU_STAT_NONE)
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
