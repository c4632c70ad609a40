/*
 * items_lru.c - memcached's segmented LRU: the per-class lists, tail
 * pulls (reclaim, evict, HOT/WARM to COLD, rescues to WARM), the
 * maintainer's juggle, and the per-class counters behind stats items and
 * cachedump.  Linking and unlinking items is items.c's (items_internal.h).
 */
#include "memcached.h"
#include "items.h"
#include "items_lru.h"
#include "items_internal.h"
#include "hash.h"
#include "settings.h"
#include "slabs.h"
#include "item_locks.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define PULL_SEARCH_DEPTH 5     /* tail items examined per tail pull */
#define JUGGLE_MAX 500          /* moves per list per pull of a juggle */
#define JUGGLE_ROUNDS 8         /* pulls per list per juggle */

struct lru lrus[SLABS_MAX_CLASSES];
static void (*evicted_hook)(const struct item *it); /* NULL: not told */

void items_lru_init(void)
{
    unsigned i;

    for (i = 0; i < SLABS_MAX_CLASSES; i++) {
        memset(&lrus[i], 0, sizeof(lrus[i]));
        pthread_mutex_init(&lrus[i].lock, NULL);
    }
}

void items_lru_set_evicted(void (*fn)(const struct item *it))
{
    evicted_hook = fn;
}

/* --- LRU ----------------------------------------------------------------
 * Each class has four lists (enum lru_seg); it->lru says which one a
 * linked item is on.  All four share the class's lock: the maintainer
 * moves items between them without dropping it.
 */
static void list_unlink(struct lru_list *q, struct item *it, size_t n)
{
    if (it->prev != NULL) {
        it->prev->next = it->next;
    } else {
        q->head = it->next;
    }
    if (it->next != NULL) {
        it->next->prev = it->prev;
    } else {
        q->tail = it->prev;
    }
    it->next = it->prev = NULL;
    q->number--;
    q->bytes -= n;
}

static void list_link(struct lru_list *q, struct item *it, size_t n)
{
    it->prev = NULL;
    it->next = q->head;
    if (q->head != NULL) {
        q->head->prev = it;
    }
    q->head = it;
    if (q->tail == NULL) {
        q->tail = it;
    }
    q->number++;
    q->bytes += n;
}

void items_lru_unlink_locked(struct lru *l, struct item *it)
{
    size_t n = ITEM_ntotal(it);

    list_unlink(&l->seg[it->lru], it, n);
    l->st.number--;
    l->st.bytes -= n;
}

void items_lru_link_locked(struct lru *l, struct item *it)
{
    size_t n = ITEM_ntotal(it);

    list_link(&l->seg[it->lru], it, n);
    l->st.number++;
    l->st.bytes += n;
}

/* Refresh an item on access (memcached's do_item_update).  Segmented:
 * only the access time; the lists are the maintainer's.  Flat: move to
 * the head if not done in the last ITEM_UPDATE_INTERVAL seconds, skipped
 * when the LRU is busy (a bump is only a hint). */
void items_lru_bump(struct item *it)
{
    struct lru *l = &lrus[it->slabs_clsid];

    if (settings.lru_segmented ||
        it->atime + ITEM_UPDATE_INTERVAL >= current_time) {
        it->atime = current_time;
        return;
    }
    if (pthread_mutex_trylock(&l->lock) != 0) {
        return;
    }
    if (it->it_flags & ITEM_LINKED) {
        items_lru_unlink_locked(l, it);
        items_lru_link_locked(l, it);
        l->st.moves_within_lru++;
    }
    it->atime = current_time;
    pthread_mutex_unlock(&l->lock);
}

/* Move a linked item to the head of list `to` of its class. */
static void lru_move_locked(struct lru *l, struct item *it, enum lru_seg to)
{
    size_t n = ITEM_ntotal(it);

    list_unlink(&l->seg[it->lru], it, n);
    it->lru = (uint8_t)to;
    list_link(&l->seg[to], it, n);
}

/* Count a tail item about to be reclaimed (dead) or evicted (live);
 * caller holds the class's LRU lock. */
static void count_removal(struct lru *l, struct item *it, bool dead)
{
    if (dead) {
        l->st.reclaimed++;
        if (!(it->it_flags & ITEM_FETCHED)) {
            l->st.expired_unfetched++;
        }
        return;
    }
    l->st.evicted++;
    l->st.evicted_time = current_time - it->atime;
    if (it->exptime != 0) {
        l->st.evicted_nonzero++;
    }
    if (!(it->it_flags & ITEM_FETCHED)) {
        l->st.evicted_unfetched++;
    }
    if (it->it_flags & ITEM_ACTIVE) {
        l->st.evicted_active++;
    }
    l->st.direct_reclaims++;
    if (evicted_hook != NULL) {
        evicted_hook(it);
    }
}

#define PULL_EVICT 0x1           /* COLD: evict a live tail item */
#define RESCUES_MAX 1000        /* active COLD items sent to WARM per pull */

/* Clear ACTIVE without the item's stripe lock (the tail pulls below hold
 * only the LRU lock): atomic, so no other bit set meanwhile is lost; a
 * reader setting ACTIVE again at the same moment may win, which only
 * keeps the item active. */
static void clear_active(struct item *it)
{
    __atomic_fetch_and(&it->it_flags, (uint8_t)~ITEM_ACTIVE,
                       __ATOMIC_RELAXED);
}

/* Send a HOT or WARM tail item on: ACTIVE ones to WARM (from WARM: back
 * to its head), others to COLD when the list is over `limit` bytes or
 * the item is older than max_age.  Returns true if it moved. */
static bool pull_hot_warm(struct lru *l, struct item *it, enum lru_seg seg,
                          uint64_t limit, uint32_t max_age)
{
    if (it->it_flags & ITEM_ACTIVE) {
        clear_active(it);
        lru_move_locked(l, it, LRU_WARM);
        if (seg == LRU_WARM) {
            l->st.moves_within_lru++;
        } else {
            l->st.moves_to_warm++;
        }
        return true;
    }
    if (l->seg[seg].bytes > limit || current_time - it->atime > max_age) {
        lru_move_locked(l, it, LRU_COLD);
        l->st.moves_to_cold++;
        return true;
    }
    return false;
}

enum tail_take {
    TAKE_DONE,                  /* reclaimed or evicted */
    TAKE_ALIVE,                 /* not dead after all (reclaim only) */
    TAKE_BUSY                   /* stripe locked or item in use: skip */
};

/* Unlink a tail item under its stripe lock (trylock: we hold the LRU
 * lock): a dead one is reclaimed; a live one evicted when `evict`.
 * Caller holds the class's LRU lock. */
static enum tail_take take_tail(struct lru *l, struct item *it, bool evict)
{
    uint32_t hv = hash(ITEM_key(it), it->nkey);
    bool dead;

    if (!item_trylock(hv)) {
        return TAKE_BUSY;
    }
    if (__atomic_load_n(&it->refcount, __ATOMIC_ACQUIRE) != 1) {
        /* Someone is sending it; leave it be. */
        item_unlock(hv);
        l->st.lrutail_reflocked++;
        return TAKE_BUSY;
    }
    dead = item_is_dead(it);
    if (!dead && !evict) {
        item_unlock(hv);
        return TAKE_ALIVE;
    }
    count_removal(l, it, dead);
    do_item_unlink_lru_locked(it, hv);
    item_unlock(hv);
    return TAKE_DONE;
}

/*
 * Look at up to PULL_SEARCH_DEPTH items at the tail of list `seg` of
 * class id (memcached's lru_pull_tail): dead (expired/flushed) ones are
 * reclaimed and the walk goes on; the first live one ends it, after
 * being moved on (HOT/WARM: pull_hot_warm; COLD: sent to WARM if
 * ACTIVE, else evicted with PULL_EVICT) or left where it is.  With
 * batch > 1 (the maintainer) the walk goes on after a move, up to batch
 * moves, under one taking of the lock.  Items
 * whose stripe is busy or that someone holds are passed over.  Returns
 * how many items were reclaimed, evicted or moved.  total_bytes is the
 * class's HOT+WARM+COLD size the segment shares are taken of.
 *
 * Moving between lists needs only the LRU lock, so a live item is
 * judged without hashing its key or taking its stripe: an idle pass
 * costs a lock and a look at the tail.  Deadness read here is a hint,
 * checked again under the stripe lock before anything is unlinked.
 * Where memcached evicts an ACTIVE COLD tail item (it has moved items
 * read in COLD to WARM as they were read, through a queue), this
 * rescues it to WARM instead: reads here never take the LRU lock.
 */
static int pull_tail_locked(struct lru *l, enum lru_seg seg,
                            uint64_t total_bytes, int flags,
                            uint32_t max_age, int batch)
{
    struct item *it;
    struct item *prev;
    uint64_t limit;
    int tries;
    int removed = 0;
    int rescues = 0;

    limit = total_bytes * (uint64_t)(seg == LRU_HOT ? settings.hot_lru_pct
                                     : settings.warm_lru_pct) / 100;
    for (it = l->seg[seg].tail, tries = PULL_SEARCH_DEPTH;
         it != NULL && tries > 0; it = prev, tries--) {
        prev = it->prev;
        if (item_is_dead(it)) {
            enum tail_take t = take_tail(l, it, false);
            if (t == TAKE_DONE && ++removed < batch) {
                tries = PULL_SEARCH_DEPTH + 1;
            }
            if (t != TAKE_ALIVE) {
                continue;
            }
        }
        if (seg == LRU_HOT || seg == LRU_WARM) {
            if (!pull_hot_warm(l, it, seg, limit, max_age) ||
                ++removed >= batch) {
                break;
            }
            tries = PULL_SEARCH_DEPTH + 1;
            continue;
        }
        if (seg == LRU_TEMP) {
            break;
        }
        if ((it->it_flags & ITEM_ACTIVE) && settings.lru_segmented) {
            clear_active(it);
            lru_move_locked(l, it, LRU_WARM);
            l->st.moves_to_warm++;
            removed++;
            if (!(flags & PULL_EVICT)) {
                if (removed >= batch) {
                    break;
                }
                tries = PULL_SEARCH_DEPTH + 1;
                continue;
            }
            if (++rescues < RESCUES_MAX) {
                tries++;        /* a rescue is not a failed look */
            }
            continue;
        }
        if (!(flags & PULL_EVICT) || !settings.evict_to_free) {
            break;
        }
        if (take_tail(l, it, true) == TAKE_DONE) {
            removed++;
            break;
        }
    }
    return removed;
}

static int lru_pull_tail(unsigned id, enum lru_seg seg, int flags)
{
    struct lru *l = &lrus[id];
    int n;

    pthread_mutex_lock(&l->lock);
    n = pull_tail_locked(l, seg, 0, flags, 0, 1);
    pthread_mutex_unlock(&l->lock);
    return n;
}

/* Make room in class id for one allocation (memcached's
 * do_item_alloc_pull): evict COLD's tail; when COLD has nothing to
 * give, push HOT's (then WARM's) tail down to COLD for the next try.
 * Returns false when nothing more can be done. */
bool items_lru_make_room(unsigned id)
{
    if (lru_pull_tail(id, LRU_COLD, PULL_EVICT) > 0) {
        return true;
    }
    if (!settings.lru_segmented) {
        return false;
    }
    return lru_pull_tail(id, LRU_HOT, 0) > 0 ||
           lru_pull_tail(id, LRU_WARM, 0) > 0;
}

/* Flat LRU: reclaim dead items at COLD's tail before taking new memory,
 * as memcached does (the segmented LRU leaves that to the maintainer).
 * Peeks first so that a set pays no hash when the tail is alive. */
void items_lru_reclaim_cold_tail(unsigned id)
{
    struct lru *l = &lrus[id];
    bool dead;

    pthread_mutex_lock(&l->lock);
    dead = l->seg[LRU_COLD].tail != NULL &&
           item_is_dead(l->seg[LRU_COLD].tail);
    pthread_mutex_unlock(&l->lock);
    if (dead) {
        (void)lru_pull_tail(id, LRU_COLD, 0);
    }
}

void items_count_crawl(unsigned id, uint64_t checked, uint64_t reclaimed)
{
    struct lru *l = &lrus[id];

    pthread_mutex_lock(&l->lock);
    l->st.crawler_items_checked += checked;
    l->st.crawler_reclaimed += reclaimed;
    pthread_mutex_unlock(&l->lock);
}

/* --- stats --------------------------------------------------------------- */

/* Seconds since the tail of list q was accessed (0 when empty). */
static uint64_t tail_age(const struct lru_list *q)
{
    return q->tail != NULL ? current_time - q->tail->atime : 0;
}

void items_lru_stats(unsigned id, struct lru_stats *out)
{
    struct lru *l = &lrus[id];
    unsigned i;

    pthread_mutex_lock(&l->lock);
    *out = l->st;
    for (i = 0; i < LRU_NSEGS; i++) {
        out->number_seg[i] = l->seg[i].number;
    }
    out->age = tail_age(&l->seg[LRU_COLD]);
    out->age_hot = tail_age(&l->seg[LRU_HOT]);
    out->age_warm = tail_age(&l->seg[LRU_WARM]);
    pthread_mutex_unlock(&l->lock);
}

void items_reset_lru_stats(void)
{
    unsigned id;

    for (id = 0; id < SLABS_MAX_CLASSES; id++) {
        struct lru *l = &lrus[id];
        uint64_t number, bytes;

        pthread_mutex_lock(&l->lock);
        number = l->st.number;
        bytes = l->st.bytes;
        memset(&l->st, 0, sizeof(l->st));
        l->st.number = number;
        l->st.bytes = bytes;
        pthread_mutex_unlock(&l->lock);
    }
}

/* --- the LRU maintainer's pass (lru_maintainer.c runs it) -----------------
 * memcached's lru_maintainer_juggle: reclaim TEMP's dead tail items, then
 * pull the HOT, WARM and COLD tails until nothing moves.  HOT and WARM
 * may hold hot_lru_pct and warm_lru_pct of the class's bytes, and items
 * no older than hot_max_factor and warm_max_factor times COLD's tail age
 * (0 when the LRU is flat, which drains them into COLD).
 */
/* The maintainer's last yield (util_preempt_point); it alone juggles. */
static uint64_t juggle_yield_us;

int items_lru_juggle(unsigned id)
{
    struct lru *l = &lrus[id];
    uint64_t total;
    uint32_t hot_age = 0, warm_age = 0;
    int did = 0;
    int i;

    /* The lock is taken once per round, not per move: a pass moves a
     * few items each time under a steady load, and the lock round trips
     * would cost more than the moves.  After a bulk load a pass can move
     * thousands (8 rounds of up to 500 per list, milliseconds with cold
     * items): between rounds the lock is let go and the CPU given away
     * at most once a millisecond (doc/threads.txt, "Yield points"), so a
     * worker storing into this class, or woken on this CPU, is not held
     * up for the whole pass. */
    pthread_mutex_lock(&l->lock);
    if (settings.temp_lru) {
        did += pull_tail_locked(l, LRU_TEMP, 0, 0, 0, JUGGLE_MAX);
    }
    /* Flat (`lru mode flat` after segmented): shares and ages of 0
     * drain HOT and WARM into COLD, as memcached. */
    total = 0;
    if (settings.lru_segmented) {
        uint32_t cold_age = (uint32_t)tail_age(&l->seg[LRU_COLD]);
        total = l->seg[LRU_HOT].bytes + l->seg[LRU_WARM].bytes +
                l->seg[LRU_COLD].bytes;
        hot_age = (uint32_t)(cold_age * settings.hot_max_factor);
        warm_age = (uint32_t)(cold_age * settings.warm_max_factor);
    }
    /* A pull that met a busy or dead item returns early: go round again
     * while anything happens, a few times at most. */
    for (i = 0; i < JUGGLE_ROUNDS; i++) {
        int more;

        if (i > 0) {
            pthread_mutex_unlock(&l->lock);
            util_preempt_point(&juggle_yield_us);
            pthread_mutex_lock(&l->lock);
        }
        more = pull_tail_locked(l, LRU_HOT, total, 0, hot_age, JUGGLE_MAX) +
               pull_tail_locked(l, LRU_WARM, total, 0, warm_age, JUGGLE_MAX);
        if (settings.lru_segmented) {
            more += pull_tail_locked(l, LRU_COLD, total, 0, 0, JUGGLE_MAX);
        }
        if (more == 0) {
            break;
        }
        did += more;
    }
    pthread_mutex_unlock(&l->lock);
    return did;
}

void items_lru_totals(struct lru_stats *out)
{
    unsigned id;

    memset(out, 0, sizeof(*out));
    for (id = 1; id < SLABS_MAX_CLASSES; id++) {
        struct lru_stats s;
        items_lru_stats(id, &s);
        out->number += s.number;
#define LRU_STAT_SUM(name, ...) out->name += s.name;
        LRU_STATS(LRU_STAT_SUM, LRU_STAT_NONE, LRU_STAT_NONE)
#undef LRU_STAT_SUM
        out->bytes += s.bytes;
    }
}

#define ITEM_STAT(field, value) \
    do { \
        snprintf(name, sizeof(name), "items:%u:%s", id, field); \
        sb_stat(sb, name, "%llu", (unsigned long long)(value)); \
    } while (0)

void items_stats(struct strbuf *sb)
{
    char name[64];
    unsigned id;

    for (id = 1; id <= slabs_count(); id++) {
        struct lru_stats s;
        uint64_t used, nfree, requested;

        items_lru_stats(id, &s);
        if (s.number == 0 && s.evicted == 0 && s.outofmemory == 0) {
            continue;
        }
        slabs_class_stats(id, &used, &nfree, &requested);
        ITEM_STAT("number", s.number);
        ITEM_STAT("number_hot", s.number_seg[LRU_HOT]);
        ITEM_STAT("number_warm", s.number_seg[LRU_WARM]);
        ITEM_STAT("number_cold", s.number_seg[LRU_COLD]);
        if (settings.temp_lru) {
            ITEM_STAT("number_temp", s.number_seg[LRU_TEMP]);
        }
        ITEM_STAT("age_hot", s.age_hot);
        ITEM_STAT("age_warm", s.age_warm);
        ITEM_STAT("age", s.age);
        ITEM_STAT("mem_requested", requested);
#define LRU_STAT_ITEM(name, ...) ITEM_STAT(#name, s.name);
        LRU_STATS(LRU_STAT_ITEM, LRU_STAT_ITEM, LRU_STAT_NONE)
#undef LRU_STAT_ITEM
        ITEM_STAT("hits_to_hot", 0);
        ITEM_STAT("hits_to_warm", 0);
        ITEM_STAT("hits_to_cold", 0);
        ITEM_STAT("hits_to_temp", 0);
    }
}

void items_stats_sizes(struct strbuf *sb)
{
    sb_stat(sb, "sizes_status", "disabled");
}

/* --- stats cachedump --------------------------------------------------- */

bool items_cachedump(unsigned id, unsigned limit, struct strbuf *sb)
{
    struct lru *l;
    struct item *it;
    unsigned n = 0;
    unsigned q;

    if (id < 1 || id > slabs_count()) {
        return false;
    }
    l = &lrus[id];
    pthread_mutex_lock(&l->lock);
    for (q = 0; q < LRU_NSEGS; q++) {
        for (it = l->seg[q].head; it != NULL && (limit == 0 || n < limit) &&
             sb->len < 2 * 1024 * 1024; it = it->next) {
            if (it->it_flags & ITEM_TOMBSTONE) {
                continue;
            }
            n++;
            sb_append(sb, "ITEM ", 5);
            sb_append(sb, ITEM_key(it), it->nkey);
            sb_printf(sb, " [%u b; %u s]\r\n", it->nbytes - 2,
                      it->exptime);
        }
    }
    pthread_mutex_unlock(&l->lock);
    return true;
}
