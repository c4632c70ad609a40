/*
 * thread.c - worker threads (the item stripe locks are item_locks.c).
 * The main thread
 * accepts connections and hands each to a worker through a queue and a
 * notify pipe; from then on only that worker touches the connection.
 *
 *   main: accept() -> cq push -> write(notify_wr, "c")
 *   worker: notify_ev -> cq pop -> conn_new() on its own event base
 *
 * A 'q' on the pipe asks the worker to close its connections and leave its
 * loop (shutdown).
 */
#include "memcached.h"
#include "thread.h"
#include "conn.h"
#include "conn_admin.h"
#include "conn_io.h"
#include "conn_reply.h"
#include "conn_sync.h"
#include "conn_udp.h"
#include "log.h"
#include "replication.h"
#include "settings.h"
#include "stats.h"
#include "watch.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- workers ------------------------------------------------------------- */

struct cq_item {
    int sfd;                    /* accepted socket */
    enum conn_transport transport; /* TCP, unix or UDP */
    bool monitor;               /* from the monitor listener */
    bool tls;                   /* from a -Z listener: TLS first */
    char listen_addr[64];       /* listener it came from */
    struct cq_item *next;       /* queue link */
};

static struct worker *workers;
static int nworkers;
static int next_worker;         /* round robin cursor (main thread) */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t init_cond = PTHREAD_COND_INITIALIZER;
static int init_count;

static struct cq_item *cq_pop(struct worker *w)
{
    struct cq_item *q;

    pthread_mutex_lock(&w->q_lock);
    q = w->q_head;
    if (q != NULL) {
        w->q_head = q->next;
        if (w->q_head == NULL) {
            w->q_tail = NULL;
        }
    }
    pthread_mutex_unlock(&w->q_lock);
    return q;
}

static void cq_push(struct worker *w, struct cq_item *q)
{
    q->next = NULL;
    pthread_mutex_lock(&w->q_lock);
    if (w->q_tail != NULL) {
        w->q_tail->next = q;
    } else {
        w->q_head = q;
    }
    w->q_tail = q;
    pthread_mutex_unlock(&w->q_lock);
}

static void adopt(struct worker *w)
{
    struct cq_item *q = cq_pop(w);
    struct conn *c;

    if (q == NULL) {
        return;
    }
    c = conn_new(q->sfd, CONN_READ, w, w->base);
    __atomic_sub_fetch(&gstats.conns_pending, 1, __ATOMIC_RELAXED);
    if (c == NULL) {
        log_warn("cannot create connection for fd %d", q->sfd);
        close(q->sfd);
    } else {
        c->transport = q->transport;
        c->monitor = q->monitor;
        if (q->monitor) {
            c->proto = CPROTO_TEXT;
        }
        memcpy(c->listen_addr, q->listen_addr, sizeof(c->listen_addr));
        if (q->transport == CT_UDP && conn_udp_adopt(c) != 0) {
            log_warn("cannot serve the UDP socket %s", q->listen_addr);
            conn_close(c);
        } else if (q->tls && !conn_start_tls(c)) {
            conn_close(c);
        } else if ((watch_mask & WATCH_CONNEVENTS) &&
                   q->transport != CT_UDP) {
            watch_conn_event(true, c->sfd, c->transport, 0);
        }
    }
    free(q);
}

static void notify_cb(evutil_socket_t fd, short which, void *arg)
{
    struct worker *w = arg;
    char buf[64];
    ssize_t n;
    ssize_t i;

    (void)which;
    n = read(fd, buf, sizeof(buf));
    for (i = 0; i < n; i++) {
        if (buf[i] == 'c') {
            adopt(w);
        } else if (buf[i] == 'w') {
            conn_watch_wake(w);
        } else if (buf[i] == 'a') {
            conn_sync_check(w);
        } else if (buf[i] == 'g') {
            conn_close_clients(w);
        } else if (buf[i] == 'q') {
            conn_close_all(w);
            event_base_loopbreak(w->base);
        }
    }
}

static void timer_cb(evutil_socket_t fd, short which, void *arg)
{
    (void)fd;
    (void)which;
    if (settings.idle_timeout > 0 || settings.ssl.enabled) {
        conn_close_idle(arg);   /* and TLS handshakes past their time */
    }
}

/* Runs after the client events already ready in this loop pass, so one
 * send(2) carries all of their replicated writes. */
static void repl_push_cb(evutil_socket_t fd, short which, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)which;
    w->repl_scheduled = false;
    repl_worker_push();
    conn_release_held(w);
}

void worker_repl_schedule(struct worker *w)
{
    if (!w->repl_scheduled) {
        w->repl_scheduled = true;
        event_active(w->repl_ev, 0, 0);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    pthread_setname_np(pthread_self(), "mc-worker");
    tstats = w->stats;
    pthread_mutex_lock(&init_lock);
    init_count++;
    pthread_cond_signal(&init_cond);
    pthread_mutex_unlock(&init_lock);
    event_base_dispatch(w->base);
    conn_tls_thread_done();
    return NULL;
}

static void sync_timer_cb(evutil_socket_t fd, short which, void *arg)
{
    (void)fd;
    (void)which;
    conn_sync_check(arg);
}

static int worker_setup(struct worker *w, int i)
{
    struct timeval one = {1, 0};
    int fds[2];

    w->index = i;
    w->stats = stats_thread(i);
    if (settings.read_buf_mem_limit != 0) {
        unsigned share = settings.read_buf_mem_limit /
                         (unsigned)settings.num_threads / CONN_RESP_UNIT;
        w->resp_left = (int)(share > 1 ? share - 1 : 1) * CONN_RESP_PER_UNIT;
    }
    w->base = event_base_new();
    /* Three priorities; connections, the notify pipe, the timers and the
     * replication push all use 1 (the default).  The push is activated
     * from a connection's handler, so it is queued behind the connections
     * already active in this pass and runs after them; a lower priority
     * would starve it while clients keep the worker busy. */
    if (w->base == NULL || event_base_priority_init(w->base, 3) != 0 ||
        pipe(fds) != 0) {
        return -1;
    }
    w->repl_ev = event_new(w->base, -1, 0, repl_push_cb, w);
    w->sync_timer = event_new(w->base, -1, EV_PERSIST, sync_timer_cb, w);
    if (w->sync_timer == NULL) {
        return -1;
    }
    if (w->repl_ev == NULL || event_priority_set(w->repl_ev, 1) != 0) {
        return -1;
    }
    w->notify_rd = fds[0];
    w->notify_wr = fds[1];
    evutil_make_socket_nonblocking(w->notify_rd);
    evutil_make_socket_nonblocking(w->notify_wr);
    pthread_mutex_init(&w->q_lock, NULL);
    w->notify_ev = event_new(w->base, w->notify_rd, EV_READ | EV_PERSIST,
                             notify_cb, w);
    w->timer = event_new(w->base, -1, EV_PERSIST, timer_cb, w);
    if (w->notify_ev == NULL || w->timer == NULL ||
        event_add(w->notify_ev, NULL) != 0 ||
        event_add(w->timer, &one) != 0) {
        return -1;
    }
    return 0;
}

int workers_start(int n)
{
    int i;

    workers = calloc((size_t)n, sizeof(*workers));
    if (workers == NULL) {
        return -1;
    }
    nworkers = n;
    for (i = 0; i < n; i++) {
        if (worker_setup(&workers[i], i) != 0) {
            log_warn("cannot set up worker thread %d", i);
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        if (pthread_create(&workers[i].tid, NULL, worker_main,
                           &workers[i]) != 0) {
            log_warn("cannot create worker thread: %s", strerror(errno));
            return -1;
        }
    }
    pthread_mutex_lock(&init_lock);
    while (init_count < n) {
        pthread_cond_wait(&init_cond, &init_lock);
    }
    pthread_mutex_unlock(&init_lock);
    return 0;
}

/* The pipe is non-blocking so that a flood of wake-ups can never block
 * a sender; work items ('c', 'q') are retried until they fit. */
static void notify(struct worker *w, char what)
{
    while (write(w->notify_wr, &what, 1) != 1) {
        if (errno == EAGAIN) {
            usleep(100);
        } else if (errno != EINTR) {
            log_warn("worker notify failed: %s", strerror(errno));
            return;
        }
    }
}


void worker_sync_waiter(struct worker *w, int delta)
{
    struct timeval tick = {0, 5000};

    w->repl_waiters += delta;
    if (w->repl_waiters == delta && delta > 0) {
        event_add(w->sync_timer, &tick);
    } else if (w->repl_waiters == 0) {
        event_del(w->sync_timer);
    }
}

void workers_wake_repl(void)
{
    int i;

    for (i = 0; i < nworkers; i++) {
        if (__atomic_load_n(&workers[i].repl_waiters, __ATOMIC_RELAXED) > 0) {
            char what = 'a';
            if (write(workers[i].notify_wr, &what, 1) != 1) {
                /* Full pipe: a wake-up is pending; the timer also runs. */
            }
        }
    }
}

void workers_wake_watchers(struct worker *w)
{
    char what = 'w';

    /* A full pipe means the worker will wake anyway. */
    if (write(w->notify_wr, &what, 1) != 1) {
        return;
    }
}

void workers_dispatch(int sfd, enum conn_transport transport, bool monitor,
                      bool tls, const char *listen_addr)
{
    struct cq_item *q = malloc(sizeof(*q));
    struct worker *w;

    if (q == NULL) {
        close(sfd);
        return;
    }
    q->sfd = sfd;
    q->transport = transport;
    q->monitor = monitor;
    q->tls = tls;
    snprintf(q->listen_addr, sizeof(q->listen_addr), "%s", listen_addr);
    w = &workers[next_worker];
    next_worker = (next_worker + 1) % nworkers;
    /* Counted until adopt() has made it a connection (curr_conns): the
     * -c check in accept_one sees it from now on. */
    __atomic_add_fetch(&gstats.conns_pending, 1, __ATOMIC_RELAXED);
    cq_push(w, q);
    notify(w, 'c');
}

void workers_stop(void)
{
    int i;

    for (i = 0; i < nworkers; i++) {
        notify(&workers[i], 'q');
    }
    for (i = 0; i < nworkers; i++) {
        pthread_join(workers[i].tid, NULL);
    }
}

void workers_close_clients(void)
{
    int i;

    for (i = 0; i < nworkers; i++) {
        notify(&workers[i], 'g');
    }
}

int workers_count(void)
{
    return nworkers;
}
