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
#include "item_chunk.h"
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

#define ALLOC_TRIES 10          /* tail pulls attempted per allocation */

/* A chunk of class id, evicting from its LRU (then, for the classes of
 * chunked headers and last chunks, whose LRUs may hold nothing, from
 * the chunked items' LRU `also`) when it is full; NULL when nothing
 * more can be evicted, counted as outofmemory in lru_id.  Inline: it is
 * item_alloc's loop, on every set. */
static inline void *items_alloc_pull(size_t size, unsigned id,
                                     unsigned also, unsigned lru_id)
{
    void *p = NULL;
    int tries;

    for (tries = 0; tries < ALLOC_TRIES; tries++) {
        if (!settings.lru_segmented) {
            items_lru_reclaim_cold_tail(id);
        }
        p = slabs_alloc(size, id);
        if (p != NULL || (!items_lru_make_room(id) &&
                          (also == 0 || !items_lru_make_room(also)))) {
            break;
        }
    }
    if (p == NULL) {
        pthread_mutex_lock(&lrus[lru_id].lock);
        lrus[lru_id].st.outofmemory++;
        pthread_mutex_unlock(&lrus[lru_id].lock);
    }
    return p;
}

/* items_chunked.c: a chunked item's header and chain (nkey and nbytes
 * set, the rest of the header left to item_alloc), or NULL; freeing
 * one; moving its header out of a page being emptied (stripe hv held,
 * no request holding it). */
struct item *items_alloc_chunked(size_t nkey, size_t nbytes);
void items_free_chunked(struct item *it);
bool items_rescue_header(struct item *it, uint32_t hv);
/* The page mover's copy: it's first n bytes in a free chunk of class id
 * (never a new page), unlinked, one reference; NULL when there is none.
 * do_item_move_to links the copy in its place (stripe hv held), keeps
 * its access time and drops the caller's reference. */
struct item *do_item_copy_out(const struct item *it, size_t n, unsigned id);
void do_item_move_to(struct item *it, struct item *copy, uint32_t hv);

/* Fill an item's value: the data and the "\r\n" every value ends with. */
static inline void set_value(struct item *it, const char *data, size_t len)
{
    if (item_is_chunked(it)) {
        item_value_write(it, 0, data, len);
        item_value_write(it, len, "\r\n", 2);
        return;
    }
    memcpy(ITEM_data(it), data, len);
    memcpy(ITEM_data(it) + len, "\r\n", 2);
}

#endif
