/*
 * thread.h - worker threads and the striped item locks.
 *
 * Lock order (see doc/threads.txt): item stripe lock -> LRU lock of a class
 * -> slab class lock.  Never take a stripe lock while holding an LRU or
 * slab lock except by trylock.
 */
#ifndef THREAD_H
#define THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Stripe locks keyed by the low bits of a key's hash.  power must not
 * exceed the hash table's initial power (the stripe of a bucket must not
 * change when the table grows). */
int item_locks_init(unsigned power);
void item_lock(uint32_t hv);
bool item_trylock(uint32_t hv);
void item_unlock(uint32_t hv);
/* Every stripe, in index order (table swap during expansion). */
void item_lock_all(void);
void item_unlock_all(void);
unsigned item_locks_power(void);


struct event_base;
struct thread_stats;
struct conn;

/* One worker: an event loop serving the connections handed to it. */
struct worker {
    pthread_t tid;              /* its thread */
    int index;                  /* 0..n-1 */
    struct event_base *base;    /* its event loop */
    struct event *notify_ev;    /* readable when work is queued */
    int notify_rd;              /* pipe: read end */
    int notify_wr;              /* pipe: write end */
    pthread_mutex_t q_lock;     /* guards q_head/q_tail */
    struct cq_item *q_head;     /* new connections to adopt */
    struct cq_item *q_tail;     /* last queued */
    struct event *timer;        /* once a second: idle timeouts */
    struct thread_stats *stats; /* its counters */
    struct conn *conns;         /* its open connections */
    struct event *repl_ev;      /* lowest priority: push replication */
    bool repl_scheduled;        /* repl_ev is active */
    struct conn *held;          /* replies held until repl_ev has run */
    int repl_waiters;           /* connections holding a sync write */
    struct event *sync_timer;   /* 5 ms while repl_waiters > 0 */
};

/* Start n workers, each with its own event base; returns 0 or -1. */
int workers_start(int n);
/* Hand an accepted socket to the next worker, round robin. */
void workers_dispatch(int sfd, bool is_unix, bool monitor,
                      const char *listen_addr);
/* Ask every worker to close its connections and exit; join them. */
void workers_stop(void);
/* Every worker closes its client connections (monitor ones excepted). */
void workers_close_clients(void);
int workers_count(void);
/* Wake every worker that holds synchronous writes (replication thread,
 * after an acknowledgement). */
void workers_wake_repl(void);
/* Start/stop worker w's sync timer as its waiter count changes. */
void worker_sync_waiter(struct worker *w, int delta);

/* Run w's replication push after the connections ready in this loop
 * pass (w's thread). */
void worker_repl_schedule(struct worker *w);

/* Ask worker w to flush its watcher connections (any thread). */
void workers_wake_watchers(struct worker *w);

#endif
