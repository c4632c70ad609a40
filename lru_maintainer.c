/*
 * lru_maintainer.c - the LRU maintainer thread: runs items_lru_juggle()
 * on every slab class, each on its own backoff, so that HOT and WARM stay
 * within their shares, active COLD items go back to WARM and dead items
 * at the tails are reclaimed without waiting for a read or a full class.
 * It also runs slab_automove.  The juggling itself is in items_lru.c and the
 * automove decision in slab_automove.c; this file only schedules them.
 */
#include "lru_maintainer.h"
#include "items.h"
#include "items_lru.h"
#include "log.h"
#include "settings.h"
#include "slab_automove.h"
#include "slabs.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

/* Sleeps in microseconds.  A class that had no work backs off by an
 * eighth each time up to MAX_SLEEP, as in memcached.  One that had work
 * is looked at again when about BATCH moves will be waiting: its wait
 * is scaled by BATCH / moves of the last pass, between MIN_SLEEP and
 * BUSY_MAX_SLEEP.  memcached goes round again at once while there is
 * work; waking every millisecond instead cost ~60 instructions per set
 * in passes over the classes and a poll(2) per millisecond, to move a
 * handful of items each time.  Under a steady stream of stores the wait
 * settles where a pass moves ~BATCH items (~20,000 sets/s: 6 ms); past
 * BATCH * 1000 moves a second it stays at MIN_SLEEP.  HOT and WARM may
 * then run over their shares by what arrives in one wait, which the
 * next pass takes back; a store that finds no free memory pulls the
 * tails itself (items.c, make_room), as before. */
#define MIN_SLEEP 1000
#define BUSY_MAX_SLEEP 10000
#define MAX_SLEEP 1000000
#define BATCH 128

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t tid;
static bool running;            /* thread started (under lock) */
static int stop_pipe[2] = {-1, -1}; /* a byte written: stop */
static uint64_t juggles;        /* atomic */

/* Wait usec microseconds (rounded up to a millisecond) or until asked to
 * stop; false when stopping.  One poll(2) per wait: a condition variable
 * with a timeout cost two futex calls per wake, and the thread wakes up
 * to a thousand times a second under a steady write load. */
static bool nap(unsigned usec)
{
    struct pollfd p = { .fd = stop_pipe[0], .events = POLLIN };
    int ms = (int)((usec + 999) / 1000);

    for (;;) {
        int n = poll(&p, 1, ms);
        if (n > 0) {
            return false;
        }
        if (n == 0 || errno != EINTR) {
            return true;
        }
    }
}

/* One class's next wait after a juggle that did `did` things, its wait
 * having been cur. */
static unsigned backoff(unsigned cur, int did)
{
    uint64_t next;

    if (did == 0) {
        cur = cur != 0 ? cur + cur / 8 : MIN_SLEEP;
        return cur > MAX_SLEEP ? MAX_SLEEP : cur;
    }
    next = (uint64_t)(cur != 0 ? cur : MIN_SLEEP) * BATCH / (unsigned)did;
    if (next > BUSY_MAX_SLEEP) {
        return BUSY_MAX_SLEEP;
    }
    return next < MIN_SLEEP ? MIN_SLEEP : (unsigned)next;
}

static void *maintainer_main(void *arg)
{
    unsigned next[SLABS_MAX_CLASSES] = {0};
    unsigned wait[SLABS_MAX_CLASSES] = {0};
    unsigned to_sleep = MIN_SLEEP;
    uint32_t last_automove = 0;

    (void)arg;
    pthread_setname_np(pthread_self(), "mc-lrumaint");
    while (nap(to_sleep)) {
        unsigned slept = to_sleep > MIN_SLEEP ? to_sleep : MIN_SLEEP;
        unsigned id, n = slabs_count();

        to_sleep = MAX_SLEEP;
        __atomic_add_fetch(&juggles, 1, __ATOMIC_RELAXED);
        for (id = 1; id <= n; id++) {
            next[id] = next[id] > slept ? next[id] - slept : 0;
            if (next[id] == 0) {
                wait[id] = backoff(wait[id], items_lru_juggle(id));
                next[id] = wait[id];
            }
            if (next[id] < to_sleep) {
                to_sleep = next[id];
            }
        }
        /* slab_automove looks once a second, as in memcached, and again
         * at once while it is giving pages back to the global pool. */
        if (settings.slab_automove != 0 && settings.slab_reassign &&
            last_automove != current_time) {
            if (slab_automove_tick()) {
                to_sleep = MIN_SLEEP;
            } else {
                last_automove = current_time;
            }
        }
    }
    return NULL;
}

int lru_maintainer_start(void)
{
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (!running) {
        if (pipe(stop_pipe) != 0) {
            rc = -1;
        } else if (pthread_create(&tid, NULL, maintainer_main, NULL) != 0) {
            close(stop_pipe[0]);
            close(stop_pipe[1]);
            rc = -1;
        } else {
            running = true;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void lru_maintainer_stop(void)
{
    pthread_mutex_lock(&lock);
    if (!running) {
        pthread_mutex_unlock(&lock);
        return;
    }
    while (write(stop_pipe[1], "x", 1) < 0 && errno == EINTR) {
    }
    pthread_mutex_unlock(&lock);
    pthread_join(tid, NULL);
    pthread_mutex_lock(&lock);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    stop_pipe[0] = stop_pipe[1] = -1;
    running = false;
    pthread_mutex_unlock(&lock);
}

uint64_t lru_maintainer_juggles(void)
{
    return __atomic_load_n(&juggles, __ATOMIC_RELAXED);
}
