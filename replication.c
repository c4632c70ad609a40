/*
 * replication.c - pair replication's link state machine: the links to
 * the peer (states, duplicates, close), the once-every-100 ms cron
 * (timeouts, heartbeats, acks, redials, the start gate), configuration,
 * start and `stats replication`.  A link's socket I/O, the record codec,
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

void link_summary_set_state(struct link *l, enum repl_state s)
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
    link_summary_set_state(l, link_summary(l->out_state, l->in_state));
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
    link_summary_set_state(l, link_summary(l->out_state, l->in_state));
    if (s == IN_LIVE) {
        wake_ask(l);
    }
}

void wake_ask(struct link *l)
{
    char line[REC_LINE_MAX];
    uint64_t n = wake_serial();

    if (l->in_state != IN_LIVE || l->wake_asked == n ||
        (wake_state() != WAKE_HOLDING && !regated)) {
        return;
    }
    l->wake_asked = n;
    send_ctl(l, line, repl_fmt_ping_ask(line, n));   /* sent by the caller's pump */
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
    link_summary_set_state(l, REPL_NONE);
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

/* For repl_link_io.c, whose reads refuse the peer's bytes. */
void link_peer_refused(struct link *l)
{
    peer_refused(l);
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
 *   - with -o repl_wake_hold=1 (and no gate, or a stall shorter than
 *     repl_timeout), they hold every client request read after the
 *     wake until the peer's stream is applied up to a PING the peer
 *     sent after it (repl_apply.c, on_ping), at most repl_timeout
 *     seconds; by default a request only waits for the timer's next
 *     tick;
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
        if (!settings.repl_wake_hold) {
            log_warn("replication: this process did not run for %llu ms",
                     (unsigned long long)gap_ms);
            return;
        }
        log_warn("replication: this process did not run for %llu ms; "
                 "client requests wait until it has caught up with the "
                 "peer", (unsigned long long)gap_ms);
        wake_hold(now);
        next_dial_us = now;     /* the peer may have dropped the link */
        backoff_ms = BACKOFF_MIN_MS;
        for (i = 0; i < MAX_LINKS; i++) {
            if (repl_links[i].fd >= 0) {
                wake_ask(&repl_links[i]);
            }
        }
        return;
    }
    __atomic_add_fetch(&stalls, 1, __ATOMIC_RELAXED);
    log_warn("replication: this process did not run for %llu ms "
             "(repl_timeout %d s); closing the client port until it has "
             "caught up with the peer", (unsigned long long)gap_ms,
             settings.repl_timeout);
    wake_gate();
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
        link_pump(l, false);
    }
    if (repl_active == NULL && now >= next_dial_us) {
        link_dial(peer_host, peer_port);
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
    listen_ev = event_new(repl_base, listen_fd, EV_READ | EV_PERSIST,
                          link_accept_cb, NULL);
    wake_ev = event_new(repl_base, wake_rd, EV_READ | EV_PERSIST,
                        link_wake_cb, NULL);
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