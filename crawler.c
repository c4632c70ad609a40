/*
 * crawler.c - a thread that walks the hash table a slice of buckets at a
 * time, reclaiming items that expired or were flushed, so that memory comes
 * back without waiting for a read of each dead key.  It runs every
 * CRAWL_INTERVAL seconds and on `lru_crawler crawl`.  The walk holds one
 * stripe lock at a time (assoc_walk_buckets), never a global lock.
 */
#include "memcached.h"
#include "crawler.h"
#include "assoc.h"
#include "hash.h"
#include "items.h"
#include "items_lru.h"
#include "log.h"
#include "settings.h"
#include "slabs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CRAWL_INTERVAL 10       /* seconds between automatic passes */
#define CRAWL_SLICE 1024        /* buckets per slice */

static pthread_t tid;
static bool running;            /* thread exists */
static bool stop;               /* asked to exit */
static bool requested;          /* a crawl was asked for */
static bool busy;               /* a pass is in progress */
static bool want[SLABS_MAX_CLASSES];    /* classes of the requested pass */
static uint64_t starts;         /* passes started */
uint32_t crawler_due;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

/* Parse "all" or "1,2,3" into mask; false on a bad or unknown class. */
static bool parse_classes(const char *list, bool *mask)
{
    char buf[256];
    char *save = NULL, *tok;

    memset(mask, 0, sizeof(bool) * SLABS_MAX_CLASSES);
    if (strcmp(list, "all") == 0 || strcmp(list, "hash") == 0) {
        memset(mask, 1, sizeof(bool) * SLABS_MAX_CLASSES);
        return true;
    }
    if (strlen(list) >= sizeof(buf)) {
        return false;
    }
    strcpy(buf, list);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        uint32_t id;
        if (!safe_strtoul(tok, &id) || id == 0 || id > slabs_count()) {
            return false;
        }
        mask[id] = true;
    }
    return true;
}

/* One pass: which classes it covers, and what it has counted since the
 * counts were last handed to items_lru.c (once per slice, not per item, so
 * that a pass over millions of items does not take an LRU lock for each
 * one). */
struct pass {
    const bool *mask;
    uint64_t checked[SLABS_MAX_CLASSES];
    uint64_t reclaimed[SLABS_MAX_CLASSES];
    uint32_t due;               /* earliest deadline of what it left */
};

void crawler_lower_due(uint32_t t)
{
    uint32_t due = __atomic_load_n(&crawler_due, __ATOMIC_RELAXED);

    while ((due == 0 || t < due) &&
           !__atomic_compare_exchange_n(&crawler_due, &due, t, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* An item the pass leaves linked dies at its deadline, or (dead but in
 * use, so not reclaimed) is due at once. */
static void pass_note(struct pass *p, const struct item *it, bool dead)
{
    uint32_t t = dead ? current_time : it->exptime;

    if (t != 0 && (p->due == 0 || t < p->due)) {
        p->due = t;
    }
}

static bool reclaim_cb(struct item *it, void *arg)
{
    struct pass *p = arg;
    unsigned id = it->slabs_clsid;

    if (!p->mask[id]) {
        return true;
    }
    p->checked[id]++;
    /* Most items are alive: test that before hashing the key, which only
     * the unlink needs.  The walk holds the item's stripe lock. */
    if (!item_is_dead(it)) {
        pass_note(p, it, false);
    } else if (item_reclaim_if_dead(it, hash(ITEM_key(it), it->nkey))) {
        p->reclaimed[id]++;
    } else {
        pass_note(p, it, true);
    }
    return true;
}

static void pass_flush(struct pass *p)
{
    unsigned id;

    for (id = 0; id < SLABS_MAX_CLASSES; id++) {
        if (p->checked[id] != 0) {
            items_count_crawl(id, p->checked[id], p->reclaimed[id]);
            p->checked[id] = 0;
            p->reclaimed[id] = 0;
        }
    }
}

/* A pass over every class starts crawler_due again from what it finds
 * and what storage notes meanwhile; one over some classes only lowers
 * it. */
static void crawl_pass(const bool *mask, bool all)
{
    struct pass p;
    uint64_t next = 0;
    uint32_t was = 0;

    memset(&p, 0, sizeof(p));
    p.mask = mask;
    if (all) {
        was = __atomic_exchange_n(&crawler_due, 0, __ATOMIC_RELAXED);
    }
    do {
        next = assoc_walk_buckets(next, CRAWL_SLICE, reclaim_cb, &p);
        pass_flush(&p);
        if (settings.lru_crawler_sleep > 0 && next != 0) {
            usleep(settings.lru_crawler_sleep);
        }
    } while (next != 0 && !stop);
    if (next != 0 && was != 0) {
        crawler_lower_due(was);     /* stopped before the end */
    }
    if (p.due != 0) {
        crawler_lower_due(p.due);
    }
}

static bool all_classes(const bool *mask)
{
    unsigned id;

    for (id = 1; id < SLABS_MAX_CLASSES; id++) {
        if (!mask[id]) {
            return false;
        }
    }
    return true;
}

/* The automatic pass: only once an item may have died since the last. */
static bool pass_due(void)
{
    uint32_t due = __atomic_load_n(&crawler_due, __ATOMIC_RELAXED);

    return due != 0 && due <= current_time;
}

static void *crawler_main(void *arg)
{
    bool mask[SLABS_MAX_CLASSES];

    (void)arg;
    pthread_setname_np(pthread_self(), "mc-lrucrawler");
    pthread_mutex_lock(&lock);
    while (!stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += CRAWL_INTERVAL;
        while (!requested && !stop &&
               pthread_cond_timedwait(&cond, &lock, &ts) != ETIMEDOUT) {
        }
        if (stop) {
            break;
        }
        if (requested) {
            memcpy(mask, want, sizeof(mask));
        } else if (pass_due()) {
            memset(mask, 1, sizeof(mask));
        } else {
            continue;
        }
        requested = false;
        busy = true;
        starts++;
        pthread_mutex_unlock(&lock);
        crawl_pass(mask, all_classes(mask));
        pthread_mutex_lock(&lock);
        busy = false;
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int crawler_start(void)
{
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (!running) {
        stop = false;
        if (pthread_create(&tid, NULL, crawler_main, NULL) != 0) {
            rc = -1;
        } else {
            running = true;
            settings.lru_crawler = true;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void crawler_stop(void)
{
    pthread_mutex_lock(&lock);
    if (!running) {
        pthread_mutex_unlock(&lock);
        return;
    }
    stop = true;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(tid, NULL);
    pthread_mutex_lock(&lock);
    running = false;
    settings.lru_crawler = false;
    pthread_mutex_unlock(&lock);
}

enum crawler_result crawler_crawl(const char *list)
{
    bool mask[SLABS_MAX_CLASSES];
    enum crawler_result r = CRAWLER_OK;

    if (!parse_classes(list, mask)) {
        return CRAWLER_BADCLASS;
    }
    pthread_mutex_lock(&lock);
    if (!running) {
        r = CRAWLER_NOTSTARTED;
    } else if (busy || requested) {
        r = CRAWLER_RUNNING;
    } else {
        memcpy(want, mask, sizeof(want));
        requested = true;
        pthread_cond_signal(&cond);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

/* Keys are printed URL-encoded, as memcached does. */
static void append_key(struct strbuf *sb, const struct item *it)
{
    char buf[KEY_MAX_LENGTH * 3 + 1];

    sb_append(sb, buf, util_url_encode(ITEM_key(it), it->nkey, buf));
}

struct dump_arg {
    const bool *mask;           /* classes to dump */
    struct strbuf *sb;          /* output */
};

static bool dump_cb(struct item *it, void *arg)
{
    struct dump_arg *d = arg;

    if (!d->mask[it->slabs_clsid] || item_is_dead(it) ||
        (it->it_flags & ITEM_TOMBSTONE)) {
        return true;
    }
    sb_append(d->sb, "key=", 4);
    append_key(d->sb, it);
    sb_printf(d->sb, " exp=%lld la=%u cas=%llu fetch=%s cls=%u size=%zu\n",
              it->exptime == 0 ? -1LL : (long long)it->exptime, it->atime,
              (unsigned long long)item_cas(it),
              (it->it_flags & ITEM_FETCHED) ? "yes" : "no",
              it->slabs_clsid, (size_t)ITEM_ntotal(it));
    return !d->sb->oom;
}

bool crawler_metadump_begin(struct metadump *d, const char *list)
{
    d->next = 0;
    return parse_classes(list, d->mask);
}

bool crawler_metadump_step(struct metadump *d, uint64_t buckets,
                           struct strbuf *sb)
{
    struct dump_arg a = {d->mask, sb};

    d->next = assoc_walk_buckets(d->next, buckets, dump_cb, &a);
    return d->next == 0;
}

uint64_t crawler_starts(void)
{
    uint64_t n;

    pthread_mutex_lock(&lock);
    n = starts;
    pthread_mutex_unlock(&lock);
    return n;
}

bool crawler_running(void)
{
    bool b;

    /* A queued request counts as running: a client that waits for
     * lru_crawler_running 0 must be able to start the next crawl. */
    pthread_mutex_lock(&lock);
    b = busy || requested;
    pthread_mutex_unlock(&lock);
    return b;
}
