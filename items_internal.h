/*
 * items_internal.h - what the storage module's files (items.c, items_lru.c,
 * items_apply.c, items_digest.c) share and nothing else sees: the LRU
 * lists, the do_* helpers that expect the key's stripe lock held, and
 * the counters and flush cutoff.  Other modules include items.h.
 */
#ifndef ITEMS_INTERNAL_H
#define ITEMS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "memcached.h"
#include "items.h"
#include "items_lru.h"
#include "settings.h"
#include "slabs.h"

/* One list of a class's segmented LRU. */
struct lru_list {
    struct item *head;          /* most recently linked */
    struct item *tail;          /* oldest: next to move or evict */
    uint64_t number;            /* items on it */
    uint64_t bytes;             /* their ITEM_ntotal() */
};

struct lru {
    struct lru_list seg[LRU_NSEGS]; /* HOT, WARM, COLD, TEMP */
    struct lru_stats st;        /* counters for stats items */
    pthread_mutex_t lock;       /* guards the lists and counters */
};

extern struct lru lrus[SLABS_MAX_CLASSES]; /* items_lru.c */
extern uint64_t total_items;   /* atomic; items.c */
extern uint64_t flush_cutoff;  /* atomic; 0 = no flush; items.c */
extern uint32_t flush_at;      /* unix time the cutoff applies from */

/* items.c: link, unlink and replace under the key's stripe lock. */
void do_item_link(struct item *it, uint32_t hv);
/* cold: into COLD where it would go to HOT (an item that has not been
 * used here, from a full copy). */
void do_item_link_in(struct item *it, uint32_t hv, bool cold);
void do_item_unlink(struct item *it, uint32_t hv);
/* ... with the class's LRU lock already held (eviction path). */
void do_item_unlink_lru_locked(struct item *it, uint32_t hv);
void do_item_replace(struct item *old, struct item *it, uint32_t hv);
void do_item_bury(struct item *old, const char *key, size_t nkey,
                  uint64_t v, uint32_t hv);

/* items_lru.c: set up the lists; make room in class id for one
 * allocation; reclaim dead items at a flat LRU's tail; tell `fn` of
 * every eviction. */
void items_lru_init(void);
bool items_lru_make_room(unsigned id);
void items_lru_reclaim_cold_tail(unsigned id);
void items_lru_set_evicted(void (*fn)(const struct item *it));
/* Put it on (take it off) its list it->lru; the class's LRU lock held. */
void items_lru_link_locked(struct lru *l, struct item *it);
void items_lru_unlink_locked(struct lru *l, struct item *it);
/* Refresh it on access (see items_lru.c). */
void items_lru_bump(struct item *it);

/* Fill an item's value: the data and the "\r\n" every value ends with. */
static inline void set_value(struct item *it, const char *data, size_t len)
{
    memcpy(ITEM_data(it), data, len);
    memcpy(ITEM_data(it) + len, "\r\n", 2);
}

#endif
