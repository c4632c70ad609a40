/*
 * repl_link_io.c - a link's socket I/O on the replication thread: the
 * slots, accept and dial, the event callback, sending (control lines,
 * the stream, a catch-up from the backlog) and reading and applying
 * what the peer sent.  The link state machine is in replication.c.
 */
#include "memcached.h"
#include "replication.h"
#include "repl_apply.h"
#include "repl_auth.h"
#include "repl_codec.h"
#include "repl_link.h"
#include "repl_net.h"
#include "repl_persist.h"
#include "repl_stream.h"
#include "repl_walk.h"
#include "repl_wake.h"
#include "tls.h"
#include "log.h"
#include "settings.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024) /* bytes per read(2) */
#define APPLY_YIELD 64          /* records applied per preemption point */

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
                 (unsigned long long)((util_mono_us() - oldest->opened_us) /
                                      1000));
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
    l->last_rx_us = util_mono_us();
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
    link_summary_set_state(l, REPL_HANDSHAKE);
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
            l->last_rx_us = util_mono_us();
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
            link_peer_refused(l);
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
void link_pump(struct link *l, bool writable)
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
        wake_unreachable(err ? strerror(err) : "connect failed");
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
    link_pump(l, (which & EV_WRITE) != 0);
}

void link_wake_cb(evutil_socket_t fd, short which, void *arg)
{
    char buf[256];

    (void)which;
    (void)arg;
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    if (repl_active != NULL) {
        link_pump(repl_active, false);    /* handles errors and overflow */
    } else {
        stream_discard();
    }
}
void link_accept_cb(evutil_socket_t fd, short which, void *arg)
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
void link_dial(const char *peer_host, const char *peer_port)
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
        wake_unreachable(err[0] != '\0' ? err : "dial failed");
        return;
    }
    if (link_open(l, fd, true, addr)) {
        l->connecting = true;
        link_want(l, EV_READ | EV_WRITE);
    }
}
