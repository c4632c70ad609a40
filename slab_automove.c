/*
 * slab_automove.c - which slab page to move where (slab_automove=1 as
 * memcached decides it; 2: a page every second to the class that evicted
 * most, from the class with most free chunks).  Called from the LRU
 * maintainer thread; the move itself is items_reassign()'s.
 */
#include "slab_automove.h"
#include "slab_mover.h"
#include "items.h"
#include "items_lru.h"
#include "log.h"
#include "settings.h"

#include <stdlib.h>
#include <string.h>

#define MIN_PAGES_FOR_SOURCE 2      /* a donor keeps more than this */
#define MIN_PAGES_FOR_RECLAIM 2.5   /* free pages' worth to give one up */

int automove_init(struct automove *a, unsigned window, double ratio)
{
    memset(a, 0, sizeof(*a));
    a->window = window > 0 ? window : 1;
    a->ratio = ratio;
    a->slots = calloc((size_t)SLABS_MAX_CLASSES * a->window,
                      sizeof(*a->slots));
    return a->slots != NULL ? 0 : -1;
}

void automove_free(struct automove *a)
{
    free(a->slots);
    a->slots = NULL;
}

/* Record class id's new sample in its window; returns the window's sums
 * in *sum. */
static void record(struct automove *a, unsigned id,
                   const struct am_sample *now, uint64_t evicted_total,
                   struct am_slot *sum)
{
    struct am_slot *w = &a->slots[(size_t)id * a->window];
    struct am_slot *cur = &w[a->runs % a->window];
    const struct am_sample *was = &a->before[id];
    uint64_t ev = now->evicted - was->evicted;
    unsigned i;

    memset(cur, 0, sizeof(*cur));
    if (ev > 0) {
        cur->evicted_share = (double)ev / (double)evicted_total;
        cur->evicted = cur->dirty = true;
    }
    if (now->outofmemory > was->outofmemory ||
        now->total_pages > was->total_pages) {
        cur->dirty = true;
    }
    cur->age = now->age;
    memset(sum, 0, sizeof(*sum));
    for (i = 0; i < a->window; i++) {
        sum->age += w[i].age;
        sum->dirty |= w[i].dirty;
        sum->evicted_share += w[i].evicted_share;
        /* evicted: counted below through evicted_seen */
    }
}

static unsigned evicted_seen(const struct automove *a, unsigned id)
{
    const struct am_slot *w = &a->slots[(size_t)id * a->window];
    unsigned i, n = 0;

    for (i = 0; i < a->window; i++) {
        n += w[i].evicted;
    }
    return n;
}

void automove_decide(struct automove *a, const struct am_sample *now,
                     unsigned n, int *src, int *dst)
{
    uint64_t evicted_total = 0, oldest_age = 0, youngest_age = UINT64_MAX;
    int oldest = -1, youngest = -1;
    bool youngest_evicting = false;
    unsigned id;

    *src = *dst = -1;
    if (n >= SLABS_MAX_CLASSES) {
        n = SLABS_MAX_CLASSES - 1;
    }
    for (id = 1; id <= n; id++) {
        evicted_total += now[id].evicted - a->before[id].evicted;
    }
    a->runs++;
    for (id = 1; id <= n; id++) {
        const struct am_sample *s = &now[id];
        struct am_slot sum;
        uint64_t age;

        record(a, id, s, evicted_total, &sum);
        age = sum.age / a->window;
        if (s->free_chunks > s->chunks_per_page * MIN_PAGES_FOR_RECLAIM &&
            !sum.dirty) {
            *src = (int)id;
            *dst = 0;
            oldest = youngest = -1;
            break;
        }
        if (age > oldest_age && s->total_pages > MIN_PAGES_FOR_SOURCE) {
            oldest = (int)id;
            oldest_age = age;
        }
        if (age < youngest_age &&
            (evicted_seen(a, id) > a->window / 2 ||
             sum.evicted_share / a->window > 0.25)) {
            youngest = (int)id;
            youngest_age = age;
            youngest_evicting =
                a->slots[(size_t)id * a->window + a->runs % a->window]
                    .evicted;
        }
    }
    memcpy(&a->before[1], &now[1], sizeof(now[0]) * n);
    if (youngest != -1 && oldest != -1 && a->runs > a->window &&
        youngest_evicting &&
        (double)youngest_age < (double)oldest_age * a->ratio) {
        *src = oldest;
        *dst = youngest;
    }
}

/* --- the live side ------------------------------------------------------- */

static struct automove am;
static bool am_ready;
static uint64_t mode2_evicted[SLABS_MAX_CLASSES];

static void sample(struct am_sample *out, unsigned n)
{
    unsigned id;

    for (id = 1; id <= n; id++) {
        struct lru_stats st;
        uint64_t used, nfree, req;

        items_lru_stats(id, &st);
        slabs_class_stats(id, &used, &nfree, &req);
        out[id].evicted = st.evicted;
        out[id].outofmemory = st.outofmemory;
        out[id].total_pages = slabs_pages(id);
        out[id].free_chunks = nfree;
        out[id].chunks_per_page = slabs_perslab(id);
        out[id].age = st.age;
    }
}

/* slab_automove=2: the class that evicted most since the last look takes
 * a page from the class with at least two pages' worth of free chunks
 * and the most of them. */
static void mode2(const struct am_sample *s, unsigned n, int *src, int *dst)
{
    uint64_t best_ev = 0, best_free = 0;
    unsigned id;

    *src = *dst = -1;
    for (id = 1; id <= n; id++) {
        uint64_t ev = s[id].evicted - mode2_evicted[id];
        mode2_evicted[id] = s[id].evicted;
        if (ev > best_ev) {
            best_ev = ev;
            *dst = (int)id;
        }
        if (s[id].total_pages > 1 &&
            s[id].free_chunks >= 2 * s[id].chunks_per_page &&
            s[id].free_chunks > best_free) {
            best_free = s[id].free_chunks;
            *src = (int)id;
        }
    }
    if (*dst == -1 || *src == -1 || *src == *dst) {
        *src = *dst = -1;
    }
}

bool slab_automove_tick(void)
{
    static struct am_sample now[SLABS_MAX_CLASSES];
    unsigned n = slabs_count();
    int src, dst;
    bool busy;

    if (n >= SLABS_MAX_CLASSES) {
        n = SLABS_MAX_CLASSES - 1;
    }
    if (!am_ready) {
        if (automove_init(&am, (unsigned)settings.slab_automove_window,
                          settings.slab_automove_ratio) != 0) {
            return false;
        }
        sample(am.before, n);
        am_ready = true;
        return false;
    }
    am.ratio = settings.slab_automove_ratio;
    sample(now, n);
    if (settings.slab_automove == 2) {
        mode2(now, n, &src, &dst);
    } else {
        automove_decide(&am, now, n, &src, &dst);
    }
    if (src < 1 || dst < 0 || items_reassign_running()) {
        return dst == 0;
    }
    if (items_reassign(src, (unsigned)dst, &busy) == REASSIGN_OK && !busy) {
        log_info("slab_automove: moving a page from class %d to %s%d",
                 src, dst == 0 ? "the global pool, " : "class ", dst);
    }
    return dst == 0;
}
