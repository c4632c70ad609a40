/*
 * replication.c - pair replication's link state machine: the links to
 * the peer (dial, accept, slots, duplicates, close), their I/O, the
 * once-every-100 ms cron (timeouts, heartbeats, acks, redials, the start
 * gate), configuration, start and `stats replication`.  The record codec,
 * the outbound stream, the handshake, the full copy, applying and the
 * sockets each have their repl_*.c.  Design: doc/replication.txt.
 */
#include "memcached.h"
#include "replication.h"
#include "repl_apply.h"
#include "repl_auth.h"
#include "repl_check.h"
#include "repl_codec.h"
#include "repl_link.h"
#include "repl_net.h"
#include "repl_persist.h"
#include "repl_stream.h"
#include "tls.h"
#include "repl_walk.h"
#include "repl_wake.h"
#include "items.h"
#include "log.h"
#include "settings.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define CRON_MS 100             /* timer period */
#define BACKOFF_MIN_MS 100      /* first redial delay */
#define BACKOFF_MAX_MS 5000     /* longest redial delay */
#define READ_CHUNK (256 * 1024) /* bytes per read(2) */
#define APPLY_YIELD 64          /* records applied per preemption point */

struct event_base *repl_base;
static pthread_t rtid;
static bool running;
static struct event *cron_ev;
static struct event *listen_ev;
static struct event *wake_ev;
static int listen_fd = -1;
static int wake_rd = -1, wake_wr = -1;
static int ready_fd = -1;       /* written once: client port may open */
static bool ready_sent;
static bool regated;            /* closed again after a stall */
/* A link was up at the last tick or came up since: before a stall, it
 * holds the state before the stall (the peer may have closed the link
 * meanwhile, and the link's read may see that before the next tick). */
static bool linked_since_tick;
static uint64_t last_cron_us;   /* the timer's last tick (repl thread) */
static uint64_t stalls;         /* atomic: stats replication stalls */
/* This process has applied its peer's full copy or caught up from its
 * backlog at least once (stats replication peer_synced): unlike
 * initial_sync_done it stays "no" when the gate opened on its timeout.
 * Written by the replication thread, read by stats: atomic. */
static bool peer_synced_once;
static uint64_t start_us;

struct link repl_links[MAX_LINKS];
struct link *repl_active;       /* the link carrying the stream */

static char peer_host[256];     /* from -x */
static char peer_port[16];
uint64_t repl_run_id;           /* random, this process */
unsigned repl_node_id;          /* low byte of our versions */
static uint64_t next_dial_us;   /* when to dial again */
static unsigned backoff_ms;     /* current redial delay */

static uint64_t sync_waits, sync_timeouts, sync_unlinked;  /* atomic */
static uint64_t sync_failed;    /* atomic: sync writes the peer refused */

pthread_mutex_t repl_stats_lock = PTHREAD_MUTEX_INITIALIZER;
struct repl_stats_s repl_rs;
static enum repl_state shown_state = REPL_NONE;
static uint64_t shown_since_us;
static char shown_peer[64];
static uint64_t lag_ms;          /* age of the oldest unacknowledged batch */
#define GATE_LOG_MS 5000        /* the held gate's progress, this often */
static bool limits_differ;      /* the last peer's -m or -M differ: atomic */

/* The replication thread's last yield (util_preempt_point). */
uint64_t repl_yield_us;

bool repl_enabled(void)
{
    return settings.repl_peer != NULL;
}

/* --- link bookkeeping ---------------------------------------------------- */

static uint64_t now_us(void)
{
    return util_mono_us();
}

static void set_shown(enum repl_state s, const char *peer)
{
    pthread_mutex_lock(&repl_stats_lock);
    if (shown_state != s) {
        shown_state = s;
        shown_since_us = now_us();
    }
    if (peer != NULL) {
        snprintf(shown_peer, sizeof(shown_peer), "%s", peer);
    }
    pthread_mutex_unlock(&repl_stats_lock);
}

/*
 * The link's state machines (doc/replication.txt, "Link states"): the
 * handshake's steps, then one per direction, each changed only by its
 * setter below, and the summary that `stats replication` shows, which
 * follows from the two directions.  The
 * transitions are checked against repl_fsm.c; one that is not legal is a
 * bug here, not the peer's doing (what the peer sends is checked before
 * it moves a state), so it is logged as such and taken anyway.
 */
static void illegal(const struct link *l, const char *what,
                    const char *from, const char *to)
{
    log_warn("replication %s: BUG: %s %s -> %s is not a legal transition",
             l->addr, what, from, to);
#ifdef REPL_FSM_STRICT
    abort();
#endif
}

static void summary_set_state(struct link *l, enum repl_state s)
{
    if (l->state == s) {
        return;
    }
    if (!repl_state_legal(l->state, s)) {
        illegal(l, "link", repl_state_name(l->state), repl_state_name(s));
    }
    log_info("replication %s: %s -> %s", l->addr, repl_state_name(l->state),
             repl_state_name(s));
    l->state = s;
    if (l == repl_active || s >= REPL_SYNCING) {
        set_shown(s, l->addr);
    }
}

void link_hs_set_state(struct link *l, enum hs_step s)
{
    if (l->hs == s) {
        return;
    }
    if (!hs_step_legal(l->hs, s)) {
        illegal(l, "handshake", hs_step_name(l->hs), hs_step_name(s));
    }
    log_debug("replication %s: handshake %s -> %s", l->addr,
              hs_step_name(l->hs), hs_step_name(s));
    l->hs = s;
}

void link_out_set_state(struct link *l, enum link_out s)
{
    if (l->out_state == s) {
        return;
    }
    if (!link_out_legal(l->out_state, s)) {
        illegal(l, "outbound", link_out_name(l->out_state), link_out_name(s));
    }
    log_debug("replication %s: outbound %s -> %s", l->addr,
              link_out_name(l->out_state), link_out_name(s));
    l->out_state = s;
    summary_set_state(l, link_summary(l->out_state, l->in_state));
}

void link_in_set_state(struct link *l, enum link_in s)
{
    if (l->in_state == s) {
        return;
    }
    if (!link_in_legal(l->in_state, s)) {
        illegal(l, "inbound", link_in_name(l->in_state), link_in_name(s));
    }
    log_debug("replication %s: inbound %s -> %s", l->addr,
              link_in_name(l->in_state), link_in_name(s));
    l->in_state = s;
    summary_set_state(l, link_summary(l->out_state, l->in_state));
}

static void link_error(struct link *l, const char *why)
{
    pthread_mutex_lock(&repl_stats_lock);
    snprintf(repl_rs.last_error, sizeof(repl_rs.last_error), "%s: %s",
             l->addr, why);
    pthread_mutex_unlock(&repl_stats_lock);
}


void link_close(struct link *l, const char *why)
{
    if (l->fd < 0) {
        return;
    }
    if (l->hs == HS_DONE) {
        log_event("replication %s: link down (%s)", l->addr, why);
    } else {
        log_info("replication %s: link closed (%s)", l->addr, why);
    }
    link_error(l, why);
    if (l == repl_active) {
        stream_close();         /* workers stop sending before close(2) */
    }
    event_free(l->ev);
    l->ev = NULL;
    tls_free(l->tls);
    l->tls = NULL;
    close(l->fd);
    l->fd = -1;
    rbuf_free(&l->in);
    l->hint_ok = false;
    rbuf_free(&l->tx);
    copy_sched_update();        /* fd is -1: this link copies no more */
    if (l == repl_active) {
        repl_active = NULL;
        set_shown(REPL_CONNECTING, NULL);
        next_dial_us = now_us() + (uint64_t)backoff_ms * 1000;
    }
    summary_set_state(l, REPL_NONE);
}

/*
 * Link slots.  A stranger that connects and trickles bytes must never
 * keep the real peer out: accepted links may hold MAX_ACCEPTED slots, so
 * our own dial always finds one; every link must finish its handshake
 * within repl_timeout of its accept or dial, whatever it sends (the cron
 * closes it, handshake_timeouts); and an accept that finds the accepted
 * slots full takes the slot of the oldest accepted link that has not
 * finished its handshake (handshake_evictions) rather than being
 * refused.  Only links that passed the handshake are never evicted.
 */
static struct link *link_slot(bool dialled)
{
    struct link *oldest = NULL;
    int i, accepted = 0;

    for (i = 0; i < MAX_LINKS; i++) {
        if (repl_links[i].fd >= 0 && !repl_links[i].dialled) {
            accepted++;
        }
    }
    for (i = 0; i < MAX_LINKS; i++) {
        if (repl_links[i].fd < 0 && (dialled || accepted < MAX_ACCEPTED)) {
            return &repl_links[i];
        }
    }
    if (dialled) {
        return NULL;
    }
    for (i = 0; i < MAX_LINKS; i++) {
        struct link *l = &repl_links[i];
        if (l->fd >= 0 && !l->dialled && l->hs != HS_DONE &&
            (oldest == NULL || l->opened_us < oldest->opened_us)) {
            oldest = l;
        }
    }
    if (oldest != NULL) {
        REPL_COUNT(handshake_evictions, 1);
        log_info("replication %s: evicted, handshake not done after %llu "
                 "ms and the slots are full", oldest->addr,
                 (unsigned long long)((now_us() - oldest->opened_us) / 1000));
        link_close(oldest, "evicted: handshake not done, slots full");
    }
    return oldest;
}

static void link_event(evutil_socket_t fd, short which, void *arg);

static bool link_want(struct link *l, short flags)
{
    flags |= EV_PERSIST;
    if (l->read_wants_write) {
        flags |= EV_WRITE;
    }
    if (l->ev_flags == flags) {
        return true;
    }
    event_del(l->ev);
    if (event_assign(l->ev, repl_base, l->fd, flags, link_event, l) != 0 ||
        event_add(l->ev, NULL) != 0) {
        return false;
    }
    l->ev_flags = flags;
    return true;
}


static bool link_open(struct link *l, int fd, bool dialled, const char *addr)
{
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->dialled = dialled;
    l->state = REPL_NONE;
    l->hs = HS_WAIT_PAIR;
    l->out_state = OUT_HANDSHAKE;
    l->in_state = IN_HANDSHAKE;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    net_tune_socket(fd, l->addr, l->congestion, sizeof(l->congestion));
    l->ev = event_new(repl_base, fd, EV_READ | EV_PERSIST, link_event, l);
    if (l->ev == NULL || event_add(l->ev, NULL) != 0) {
        close(fd);
        l->fd = -1;
        return false;
    }
    l->ev_flags = EV_READ | EV_PERSIST;
    l->last_rx_us = now_us();
    l->opened_us = l->last_rx_us;
    if (tls_repl_enabled()) {
        l->tls = tls_repl_new(fd, dialled);
        if (l->tls == NULL) {
            event_free(l->ev);
            l->ev = NULL;
            close(fd);
            l->fd = -1;
            return false;
        }
        l->tls_pending = true;
    }
    summary_set_state(l, REPL_HANDSHAKE);
    auth_begin(l);
    return true;
}

/* --- sending ------------------------------------------------------------- */

/* Send l->tx: 1 all sent, 0 the socket is full (EV_WRITE asked for),
 * -1 the link was closed. */
static int tx_send(struct link *l)
{
    while (l->tx_off < l->tx.len) {
        ssize_t n = repl_io_send(l->fd, l->tls, l->tx.data + l->tx_off,
                                 l->tx.len - l->tx_off);
        enum io_fail f;
        if (n > 0) {
            l->tx_off += (size_t)n;
            l->tx_offset += (uint64_t)n;
            REPL_COUNT(bytes_sent, (uint64_t)n);
            continue;
        }
        f = util_io_fail(n, errno);
        if (f == IO_FAIL_RETRY) {
            continue;
        }
        if (f == IO_FAIL_WAIT) {
            if (!link_want(l, EV_READ | EV_WRITE)) {
                link_close(l, "event error");
                return -1;
            }
            return 0;
        }
        link_close(l, repl_io_failure(n, errno));
        return -1;
    }
    l->tx.len = l->tx_off = 0;
    if (l->tx.cap > 4 * SYNC_HIGH_WATER) {
        rbuf_free(&l->tx);
    }
    return 1;
}

/* A partial resync: send l->tx (PSYNC), then the backlog from psync_next
 * in chunks of CATCHUP_CHUNK, until the live end of the backlog is
 * reached; from then on live records go to outq again.  1 caught up (the
 * stream may follow), 0 waiting for the socket, -1 closed. */
static int catch_up(struct link *l)
{
    for (;;) {
        int r = tx_send(l);
        bool lost = false;
        if (r <= 0) {
            return r;
        }
        switch (stream_catchup_step(&l->tx)) {
        case CATCHUP_NONE:
            return 1;
        case CATCHUP_DONE:
            log_event("replication %s: partial resync done, caught up from "
                      "the backlog", l->addr);
            link_out_set_state(l, OUT_LIVE);
            return 1;
        case CATCHUP_LOST:
            lost = true;        /* overwritten before we sent it */
            break;
        case CATCHUP_MORE:
        default:
            break;
        }
        if (lost) {
            log_warn("replication %s: the backlog moved past what the peer "
                     "still needed; a full resync follows", l->addr);
            link_close(l, "backlog overrun during catch-up");
            return -1;
        }
    }
}

/* Send what the link has queued; false if the link was closed.  writable:
 * called for EV_WRITE, so a blocked stream may try again. */
static bool link_flush(struct link *l, bool writable)
{
    if (l->connecting || l->tls_pending) {
        return true;            /* link_tls_step() sends when it is done */
    }
    if (l == repl_active && stream_enabled()) {
        struct stream_flush_result fr;
        int r = catch_up(l);
        if (r <= 0) {
            return r == 0;      /* waiting for the socket, or closed */
        }
        stream_flush(writable, &fr);
        if (fr.overflow) {
            REPL_COUNT(buffer_overflows, 1);
            log_warn("replication %s: outbound buffer over %zu bytes; "
                     "dropping the link to resync", l->addr,
                     settings.repl_buffer_size);
            link_close(l, "outbound buffer overflow");
            return false;
        }
        if (fr.err != 0) {
            link_close(l, repl_io_failure(-1, fr.err));
            return false;
        }
        /* A walk that was paused above SYNC_HIGH_WATER resumes on the
         * next event; when this flush emptied the queue without filling
         * the socket, no other event may come for a while, so ask for
         * EV_WRITE, which fires at once while the socket has room. */
        return link_want(l, fr.blocked || l->out_state == OUT_COPY
                            ? EV_READ | EV_WRITE : EV_READ) ||
               (link_close(l, "event error"), false);
    }
    switch (tx_send(l)) {
    case 1:
        break;
    case 0:
        return true;            /* EV_WRITE asked for */
    default:
        return false;
    }
    return link_want(l, EV_READ) || (link_close(l, "event error"), false);
}

void send_line(struct link *l, const char *fmt, ...)
{
    char line[REC_LINE_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof(line)) {
        return;
    }
    send_ctl(l, line, (size_t)n);
}

void send_ctl(struct link *l, const char *line, size_t n)
{
    if (l == repl_active && stream_enabled()) {
        stream_queue_ctrl(line, n);
    } else {
        rbuf_add(&l->tx, line, n);
    }
}

/* --- keeping a link ------------------------------------------------------ */

/* The preferred link is the one dialled by the node with the smaller run
 * id; both sides compute the same answer. */
static bool preferred(const struct link *l)
{
    bool dialled_by_lower = l->dialled ? repl_run_id < l->peer_run_id
                                       : l->peer_run_id < repl_run_id;
    return dialled_by_lower;
}

/* A link passed the handshake: keep it, or close it as a duplicate. */
void link_established(struct link *l)
{
    char line[REC_LINE_MAX];
    struct stream_stats ss;

    if (repl_active != NULL && repl_active != l) {
        if (!preferred(l) || preferred(repl_active)) {
            REPL_COUNT(duplicate_links, 1);
            link_close(l, "duplicate link");
            return;
        }
        REPL_COUNT(duplicate_links, 1);
        link_close(repl_active, "duplicate link");
    }
    if (l->peer_node_id == repl_node_id && repl_run_id > l->peer_run_id) {
        /* Same low byte in both nodes' versions: the larger run id moves
         * away, so versions stay unique across the pair. */
        repl_node_id = (repl_node_id + 1 + (unsigned)(repl_run_id % 254)) &
                       0xFF;
        if (repl_node_id == l->peer_node_id) {
            repl_node_id = (repl_node_id + 1) & 0xFF;
        }
        items_set_node_id(repl_node_id);
        log_info("replication: node id clashes with the peer's; now %u",
                 repl_node_id);
    }
    repl_active = l;
    linked_since_tick = true;
    link_hs_set_state(l, HS_DONE);
    log_event("replication %s: link up (%s, %s)", l->addr,
              l->dialled ? "dialled" : "accepted",
              l->tls != NULL ? "TLS" : "plain TCP");
    backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_lock(&repl_stats_lock);
    if (repl_rs.links++ > 0) {
        repl_rs.reconnects++;
    }
    pthread_mutex_unlock(&repl_stats_lock);
    /* Tell the peer how much of its stream we have; it answers with the
     * missing part (PSYNC) or a full copy (SYNC).  The last field, where
     * our stream ends, lets a restored peer open its client port once
     * caught up (repl_persist.c); older nodes ignore it. */
    stream_stats(&ss);
    send_ctl(l, line, repl_fmt_resume(line,
             repl_applied.run == l->peer_run_id ? repl_applied.run : 0,
             repl_applied.run == l->peer_run_id ? repl_applied.off : 0,
             repl_applied.run == l->peer_run_id ? repl_applied.rec : 0,
             ss.backlog_end));
    link_in_set_state(l, IN_RESUMED);
}

/* Refuse the peer: -1 for apply_one, with why and the kind of fault. */
int link_refuse(struct link *l, enum link_fault fault, const char *why)
{
    l->fault = fault;
    l->bad = why;
    return -1;
}

void link_slow_redial(void)
{
    backoff_ms = BACKOFF_MAX_MS;
    next_dial_us = now_us() + (uint64_t)BACKOFF_MAX_MS * 1000;
}

void repl_note_limits(bool differ)
{
    __atomic_store_n(&limits_differ, differ, __ATOMIC_RELAXED);
}

void repl_note_peer_synced(void)
{
    __atomic_store_n(&peer_synced_once, true, __ATOMIC_RELAXED);
}

void signal_ready(const char *why)
{
    char b = 'r';

    if (ready_sent) {
        return;
    }
    ready_sent = true;
    regated = false;
    wake_set_state(WAKE_RUNNING);
    log_event("replication: gate open, client port opening (%s)", why);
    if (ready_fd >= 0 && write(ready_fd, &b, 1) != 1) {
        log_warn("replication: cannot signal the main thread");
    }
}

/* Close a link whose peer's bytes were refused (l->fault, l->bad):
 * count it, log it with the peer's address, say why in last_error. */
static void peer_refused(struct link *l)
{
    static const char *const kinds[] = {
        "protocol error", "record refused", "authentication failed",
        "peer refused", "link refused", "resync"
    };
    char why[160];

    pthread_mutex_lock(&repl_stats_lock);
    switch (l->fault) {
    case FAULT_VERSION:
        repl_rs.bad_versions++;
        break;
    case FAULT_AUTH:
        repl_rs.auth_failures++;
        break;
    case FAULT_MISMATCH:
        repl_rs.peer_mismatches++;
        break;
    case FAULT_SELF:
    case FAULT_RESYNC:
        break;
    case FAULT_PROTOCOL:
    default:
        repl_rs.protocol_errors++;
        break;
    }
    pthread_mutex_unlock(&repl_stats_lock);
    snprintf(why, sizeof(why), "%s (%s)", kinds[l->fault],
             l->bad != NULL ? l->bad : "a line that does not parse");
    log_warn("replication %s: %s; closing the link", l->addr, why);
    if (l->fault == FAULT_MISMATCH && l->tx_off < l->tx.len) {
        /* Our HELLO, so that the peer can say why too. */
        (void)repl_io_send(l->fd, l->tls, l->tx.data + l->tx_off,
                      l->tx.len - l->tx_off);
    }
    link_close(l, why);
}

/* Read what the socket has: false if the link was closed. */
static bool read_socket(struct link *l)
{
    for (;;) {
        ssize_t n;
        enum io_fail f;
        if (!rbuf_reserve(&l->in, READ_CHUNK)) {
            link_close(l, "out of memory");
            return false;
        }
        if (l->tls != NULL) {
            enum tls_want want;
            n = tls_read(l->tls, l->in.data + l->in.len, READ_CHUNK,
                              &want);
            l->read_wants_write = n < 0 && want == TLS_WANT_WRITE;
        } else {
            n = read(l->fd, l->in.data + l->in.len, READ_CHUNK);
        }
        if (n > 0) {
            l->in.len += (size_t)n;
            l->last_rx_us = now_us();
            REPL_COUNT(bytes_received, (uint64_t)n);
            /* A short plain read drained the socket; TLS may still hold
             * decrypted bytes that no event will announce. */
            if (n < READ_CHUNK && l->tls == NULL) {
                return true;
            }
            continue;
        }
        f = util_io_fail(n, errno);
        if (f == IO_FAIL_RETRY) {
            continue;
        }
        if (f == IO_FAIL_WAIT) {
            return true;
        }
        link_close(l, repl_io_failure(n, errno));
        return false;
    }
}

/* Apply every whole record received; false if the link was closed.
 * The hook ignores what is applied meanwhile (repl_applying). */
static bool apply_received(struct link *l)
{
    repl_applying = true;
    for (unsigned done = 1;; done++) {
        size_t before = l->in_off;
        int r = apply_one(l);
        if (done % APPLY_YIELD == 0) {
            util_preempt_point(&repl_yield_us);
        }
        if (l->fd < 0) {
            break;
        }
        if (r < 0) {
            repl_applying = false;
            peer_refused(l);
            return false;
        }
        if (r == 0) {
            break;
        }
        if (l->state >= REPL_SYNCING) {
            l->rx_offset += l->in_off - before;
        }
    }
    repl_applying = false;
    return l->fd >= 0;
}

static void link_read(struct link *l)
{
    if (!read_socket(l) || !apply_received(l)) {
        return;
    }
    persist_gate_check();
    if (settings.repl_sync && l->rx_items != l->acked_rx) {
        /* Synchronous writes wait for this: acknowledge at once. */
        apply_send_ack(l);
    }
    /* Compact what was consumed. */
    if (l->in_off > 0) {
        memmove(l->in.data, l->in.data + l->in_off, l->in.len - l->in_off);
        l->in.len -= l->in_off;
        if (l->hint_ok && l->hint_off >= l->in_off) {
            l->hint_off -= l->in_off;
        } else {
            l->hint_ok = false;
        }
        l->in_off = 0;
    }
}

/* --- events -------------------------------------------------------------- */

/* Move stream bytes to the repl_active link and send; then continue a walk. */
static void pump(struct link *l, bool writable)
{
    if (l->fd < 0) {
        return;
    }
    if (l->out_state == OUT_COPY) {
        walk_step(l);
    }
    link_flush(l, writable);
}

static void finish_connect(struct link *l)
{
    int err = 0;
    socklen_t len = sizeof(err);

    l->connecting = false;
    if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
        link_close(l, err ? strerror(err) : "connect failed");
        return;
    }
    log_info("replication %s: connected", l->addr);
}

/* Drive the TLS handshake; true once it is done and the link may talk. */
static bool link_tls_step(struct link *l)
{
    enum tls_want want;
    const char *why = NULL;
    int rc = tls_handshake(l->tls, &want, &why);

    if (rc == -2) {
        log_info("replication %s: %s", l->addr, why);
        link_close(l, why);
        return false;
    }
    if (rc < 0) {
        REPL_COUNT(tls_failures, 1);
        log_warn("replication %s: %s", l->addr, why);
        link_close(l, why);
        return false;
    }
    if (rc == 0) {
        if (!link_want(l, want == TLS_WANT_WRITE ? EV_READ | EV_WRITE
                                                 : EV_READ)) {
            link_close(l, "event error");
        }
        return false;
    }
    l->tls_pending = false;
    tls_describe(l->tls, l->tls_desc, sizeof(l->tls_desc));
    if (!tls_channel_id(l->tls, l->channel)) {
        l->channel[0] = '\0';
    }
    log_info("replication %s: TLS established (%s)", l->addr, l->tls_desc);
    return true;
}

static void link_event(evutil_socket_t fd, short which, void *arg)
{
    struct link *l = arg;

    (void)fd;
    if (l->connecting) {
        finish_connect(l);
        if (l->fd < 0) {
            return;
        }
    }
    if (l->tls_pending) {
        if (!link_tls_step(l)) {
            return;
        }
        /* The peer's first lines may already sit decrypted in the
         * session: read them now, no event will tell. */
        which |= EV_READ;
    }
    if (which & EV_READ || (l->read_wants_write && (which & EV_WRITE))) {
        link_read(l);
        if (l->fd < 0) {
            return;
        }
    }
    pump(l, (which & EV_WRITE) != 0);
}

static void wake_cb(evutil_socket_t fd, short which, void *arg)
{
    char buf[256];

    (void)which;
    (void)arg;
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    if (repl_active != NULL) {
        pump(repl_active, false);    /* handles errors and overflow */
    } else {
        stream_discard();
    }
}
static void accept_cb(evutil_socket_t fd, short which, void *arg)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct link *l;
    char addr[64];
    int cfd;

    (void)which;
    (void)arg;
    cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK);
    if (cfd < 0) {
        return;
    }
    util_addr_name((struct sockaddr *)&ss, addr, sizeof(addr));
    l = link_slot(false);
    if (l == NULL) {
        log_info("replication: refusing %s, too many links", addr);
        close(cfd);
        return;
    }
    log_info("replication %s: accepted", addr);
    if (link_open(l, cfd, false, addr)) {
        link_flush(l, true);
    }
}

/* Dial the peer unless a link (or a dial) is already there. */
static void dial(void)
{
    struct link *l;
    char addr[300], err[128];
    int i, fd;

    for (i = 0; i < MAX_LINKS; i++) {
        if (repl_links[i].fd >= 0 && (repl_links[i].dialled ||
                                      repl_links[i].state >= REPL_SYNCING)) {
            return;
        }
    }
    l = link_slot(true);
    if (l == NULL) {
        return;
    }
    fd = net_dial(peer_host, peer_port, addr, sizeof(addr), err, sizeof(err));
    if (err[0] != '\0') {
        pthread_mutex_lock(&repl_stats_lock);
        snprintf(repl_rs.last_error, sizeof(repl_rs.last_error), "%s", err);
        pthread_mutex_unlock(&repl_stats_lock);
    }
    if (fd < 0) {
        return;
    }
    if (link_open(l, fd, true, addr)) {
        l->connecting = true;
        link_want(l, EV_READ | EV_WRITE);
    }
}

static void ack_and_ping(struct link *l, uint64_t now)
{
    /* Acknowledge records, not bytes: ACK and PING lines must not be
     * acknowledged, or two nodes would answer each other forever. */
    if (l->state >= REPL_SYNCING && l->rx_items != l->acked_rx) {
        apply_send_ack(l);
    }
    if (now - l->last_ping_us >= 1000000 && l->state >= REPL_SYNCING) {
        char line[REC_LINE_MAX];
        send_ctl(l, line, repl_fmt_ping(line, util_now_ms()));
        l->last_ping_us = now;
    }
}

/* The handshake deadline passed: whatever it sent, the link goes. */
static void handshake_timeout(struct link *l)
{
    REPL_COUNT(handshake_timeouts, 1);
    log_info("replication %s: handshake not done within %d s; closing",
             l->addr, settings.repl_timeout);
    link_close(l, "handshake timeout");
}

/* A link receiving the peer's full copy that applied records within the
 * last repl_timeout seconds, or NULL.  Notes each link's progress. */
static struct link *copy_arriving(uint64_t now)
{
    struct link *found = NULL;
    int i;

    for (i = 0; i < MAX_LINKS; i++) {
        struct link *l = &repl_links[i];
        if (l->fd < 0 || l->in_state != IN_COPY) {
            continue;
        }
        if (l->rx_items != l->copy_seen) {
            l->copy_seen = l->rx_items;
            l->copy_moved_us = now;
        }
        if (now - l->copy_moved_us <=
                (uint64_t)settings.repl_timeout * 1000000) {
            found = l;
        }
    }
    return found;
}

/*
 * The first sync gate: the client port opens when the peer's copy (or
 * backlog) has been applied.  repl_initial_sync_timeout bounds only the
 * wait for a peer that does not answer: a copy that is arriving keeps
 * the port closed for as long as it makes progress, however long it
 * takes, and says so in the log every GATE_LOG_MS.  A copy that stalls
 * for repl_timeout no longer holds it.
 */
static void gate_tick(uint64_t now)
{
    static uint64_t next_log_us;
    struct link *l;

    if (ready_sent || now - start_us <=
            (uint64_t)settings.repl_initial_sync_timeout * 1000000) {
        return;
    }
    l = copy_arriving(now);
    if (l == NULL) {
        log_warn("replication: no sync with %s:%s within %d s; serving "
                 "what this node has", peer_host, peer_port,
                 settings.repl_initial_sync_timeout);
        signal_ready("initial sync timed out");
        return;
    }
    if (now >= next_log_us) {
        log_warn("replication %s: the peer's copy is still arriving (%llu "
                 "of %llu items) after repl_initial_sync_timeout (%d s); "
                 "the client port stays closed until it is complete",
                 l->addr, (unsigned long long)(l->rx_items - l->copy_rx0),
                 (unsigned long long)l->copy_expected,
                 settings.repl_initial_sync_timeout);
        next_log_us = now + (uint64_t)GATE_LOG_MS * 1000;
    }
}

bool repl_regated(void)
{
    return regated;
}

/*
 * A node that was stopped (SIGSTOP, a paused VM, a starved process) for
 * WAKE_STALL_MS or more may hold a copy that misses what the peer's
 * clients wrote meanwhile (they timed out on it): it would serve stale
 * reads.  The stall shows as a gap in this 100 ms timer, and before the
 * tick is published (wake_tick) the workers are told (repl_wake.c):
 *
 *   - by default, and for a stall shorter than repl_timeout, they hold
 *     every client request read after the wake until the peer's stream
 *     is applied up to a PING the peer sent after it (repl_apply.c,
 *     on_ping), at most repl_timeout seconds;
 *   - with -o repl_stall_gate=1, after a stall of repl_timeout or more
 *     (the peer has dropped the link), the node closes its client port
 *     and its clients' connections again (the clients go to the peer),
 *     drops its link, and reopens as at start: once the peer's stream is
 *     applied up to one of the peer's PINGs after the resync, or after
 *     repl_initial_sync_timeout if no peer answers.
 *
 * Requests that waited in the sockets through the stall are held too;
 * their writes are versioned by their arrival (items.c, "late writes").
 */
static void stalled(uint64_t now, uint64_t gap_ms, bool was_linked)
{
    char b = 'c';
    int i;

    if (gap_ms < (uint64_t)settings.repl_timeout * 1000 ||
        !settings.repl_stall_gate) {
        if (gap_ms >= (uint64_t)settings.repl_timeout * 1000) {
            __atomic_add_fetch(&stalls, 1, __ATOMIC_RELAXED);
        }
        if (!ready_sent || !was_linked) {
            return;             /* no peer to catch up from */
        }
        log_warn("replication: this process did not run for %llu ms; "
                 "client requests wait until it has caught up with the "
                 "peer", (unsigned long long)gap_ms);
        wake_hold(now);
        return;
    }
    __atomic_add_fetch(&stalls, 1, __ATOMIC_RELAXED);
    log_warn("replication: this process did not run for %llu ms "
             "(repl_timeout %d s); closing the client port until it has "
             "caught up with the peer", (unsigned long long)gap_ms,
             settings.repl_timeout);
    wake_set_state(WAKE_GATED);
    for (i = 0; i < MAX_LINKS; i++) {
        if (repl_links[i].fd >= 0) {
            link_close(&repl_links[i], "this process stalled");
        }
    }
    if (ready_sent) {
        ready_sent = false;
        regated = true;
        start_us = now;
        if (ready_fd >= 0 && write(ready_fd, &b, 1) != 1) {
            log_warn("replication: cannot signal the main thread");
        }
    }
    next_dial_us = now;
    backoff_ms = BACKOFF_MIN_MS;
}

static void repl_cron(evutil_socket_t fd, short which, void *arg)
{
    uint64_t now = now_us();
    uint64_t gap_ms = (now - last_cron_us) / 1000;
    bool late = gap_ms > COPY_STARVED_MS;
    int i;

    (void)fd;
    (void)which;
    (void)arg;
    last_cron_us = now;
    if (gap_ms >= WAKE_STALL_MS) {
        /* before the workers see the new tick */
        stalled(now, gap_ms, linked_since_tick);
    }
    wake_tick(item_clock_sample(), now);
    copy_note_cron(now);
    for (i = 0; i < MAX_LINKS; i++) {
        struct link *l = &repl_links[i];
        if (l->fd < 0) {
            continue;
        }
        if (l->hs != HS_DONE && now - l->opened_us >
                (uint64_t)settings.repl_timeout * 1000000) {
            handshake_timeout(l);
            continue;
        }
        /* After a late tick the peer's bytes may be sitting unread in
         * the socket: judge the timeout on the next tick. */
        if (!late &&
            now - l->last_rx_us > (uint64_t)settings.repl_timeout * 1000000) {
            link_close(l, "timeout");
            continue;
        }
        ack_and_ping(l, now);
        pump(l, false);
    }
    if (repl_active == NULL && now >= next_dial_us) {
        dial();
        next_dial_us = now + (uint64_t)backoff_ms * 1000;
        backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                     : backoff_ms * 2;
    }
    gate_tick(now);
    now = now_us();     /* pump() above may have noted newer samples */
    lag_ms = stream_lag_ms(now);
    check_tick(repl_active, now);
    linked_since_tick = repl_active != NULL;
}

static void *repl_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "mc-repl");
    copy_note_thread();
    /* A stall before the timer's first tick is a stall too. */
    last_cron_us = now_us();
    wake_tick(item_clock_sample(), last_cron_us);
    event_base_dispatch(repl_base);
    return NULL;
}

/* --- configuration and start --------------------------------------------- */
/* Whether something proves the peer is the peer: a secret, or TLS
 * that verifies its certificate. */
static bool authenticated(void)
{
    return auth_has_secret() || tls_repl_verifies_peer();
}

int repl_configure(void)
{
    if (settings.repl_peer == NULL) {
        return 0;
    }
    if (net_parse_peer(settings.repl_peer, peer_host, sizeof(peer_host),
                       peer_port, sizeof(peer_port)) != 0) {
        fprintf(stderr, "bad -x peer address: %s\n", settings.repl_peer);
        return -1;
    }
    if (settings.repl_secret_file != NULL &&
        auth_read_secret(settings.repl_secret_file) != 0) {
        return -1;
    }
    if (net_check_congestion() != 0 || tls_repl_configure() != 0) {
        return -1;
    }
    return net_check_peer_addr(peer_host, peer_port, authenticated());
}

int repl_start(int ready)
{
    uint64_t r = 0;
    struct timeval tick = {0, CRON_MS * 1000};
    int fds[2], i;

    ready_fd = ready;
    if (settings.repl_peer == NULL) {
        return 0;
    }
    for (i = 0; i < MAX_LINKS; i++) {
        repl_links[i].fd = -1;
    }
    if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
        r = now_us() ^ ((uint64_t)getpid() << 32);
    }
    repl_run_id = r | 1;
    repl_node_id = (unsigned)(r >> 8) & 0xFF;
    items_set_node_id(repl_node_id);
    listen_fd = net_open_listener(authenticated());
    if (listen_fd < 0 || pipe2(fds, O_NONBLOCK) != 0) {
        return -1;
    }
    wake_rd = fds[0];
    wake_wr = fds[1];
    if (stream_init(settings.repl_backlog_size, wake_wr) != 0) {
        fprintf(stderr, "cannot allocate the %zu-byte replication backlog\n",
                settings.repl_backlog_size);
        return -1;
    }
    (void)persist_restore();    /* a warm restart keeps its ids (-e) */
    repl_base = event_base_new();
    if (repl_base == NULL) {
        return -1;
    }
    listen_ev = event_new(repl_base, listen_fd, EV_READ | EV_PERSIST, accept_cb,
                          NULL);
    wake_ev = event_new(repl_base, wake_rd, EV_READ | EV_PERSIST, wake_cb,
                        NULL);
    cron_ev = event_new(repl_base, -1, EV_PERSIST, repl_cron, NULL);
    if (listen_ev == NULL || wake_ev == NULL || cron_ev == NULL ||
        event_add(listen_ev, NULL) != 0 || event_add(wake_ev, NULL) != 0 ||
        event_add(cron_ev, &tick) != 0) {
        return -1;
    }
    start_us = now_us();
    log_event("replication: gate closed, the client port opens after the "
              "first sync with %s:%s (at most %d s)", peer_host, peer_port,
              settings.repl_initial_sync_timeout);
    backoff_ms = BACKOFF_MIN_MS;
    next_dial_us = 0;
    set_shown(REPL_CONNECTING, NULL);
    items_set_mutation_hook(repl_feed);
    items_set_tombstone_ttl((uint32_t)settings.repl_tombstone_ttl);
    if (pthread_create(&rtid, NULL, repl_main, NULL) != 0) {
        return -1;
    }
    running = true;
    stream_hook_on();
    log_info("replication: run id %016llx, node id %u, listening on port "
             "%d, peer %s:%s", (unsigned long long)repl_run_id, repl_node_id,
             settings.repl_port, peer_host, peer_port);
    return 0;
}

void repl_stop(void)
{
    if (!running) {
        return;
    }
    event_base_loopbreak(repl_base);
    pthread_join(rtid, NULL);
    running = false;
}

/* --- stats replication --------------------------------------------------- */

void repl_stats(struct strbuf *sb)
{
    struct repl_stats_s c;
    enum repl_state st;
    struct stream_stats ss;
    uint64_t since, lagms;
    char peer[64];
    struct link *l = repl_active;

    if (settings.repl_peer == NULL) {
        sb_stat(sb, "role", "none");
        return;
    }
    pthread_mutex_lock(&repl_stats_lock);
    c = repl_rs;
    st = shown_state;
    since = shown_since_us;
    lagms = lag_ms;
    snprintf(peer, sizeof(peer), "%s", shown_peer);
    pthread_mutex_unlock(&repl_stats_lock);
    stream_stats(&ss);
#define COUNTER(name, what) sb_stat(sb, #name, "%llu", U(c.name));
#define LINE(name, ...) sb_stat(sb, #name, __VA_ARGS__);
    REPL_STATS(COUNTER, REPL_STAT_NONE, LINE)
#undef COUNTER
#undef LINE
    persist_stats(sb);
}

/* --- synchronous writes -------------------------------------------------- */

void repl_count_sync_failed(void)
{
    uint64_t n = __atomic_add_fetch(&sync_failed, 1, __ATOMIC_RELAXED);

    __atomic_add_fetch(&sync_waits, 1, __ATOMIC_RELAXED);
    if (n % 1000 == 1) {
        log_warn("replication: a synchronous write the peer could not "
                 "store was answered with an error (%llu so far)",
                 (unsigned long long)n);
    }
}

void repl_count_sync(bool timed_out, bool unlinked)
{
    __atomic_add_fetch(&sync_waits, 1, __ATOMIC_RELAXED);
    if (timed_out) {
        if (__atomic_add_fetch(&sync_timeouts, 1, __ATOMIC_RELAXED) % 1000
                == 1) {
            log_warn("replication: a synchronous write was not acknowledged "
                     "by the peer within %d ms; answered anyway (%llu so "
                     "far)", settings.repl_sync_timeout,
                     (unsigned long long)sync_timeouts);
        }
    }
    if (unlinked) {
        __atomic_add_fetch(&sync_unlinked, 1, __ATOMIC_RELAXED);
    }
}