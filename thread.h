/*
 * thread.h - worker threads: start, stop, hand-off of connections, and
 * the wake-ups other threads send them.  The item stripe locks are
 * item_locks.h.
 */
#ifndef THREAD_H
#define THREAD_H

#include "memcached.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

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
    int resp_left;              /* response slots left of its
                                   read_buf_mem_limit share (conn.h) */
};

/* Start n workers, each with its own event base; returns 0 or -1. */
int workers_start(int n);
/* Hand an accepted socket to the next worker, round robin. */
void workers_dispatch(int sfd, enum conn_transport transport, bool monitor,
                      bool tls, const char *listen_addr);
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
