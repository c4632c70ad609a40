/*
 * repl_link.h - one link to the peer as the replication modules share it
 * (replication.c, repl_link_io.c, repl_auth.c, repl_walk.c,
 * repl_apply.c): struct link, the link functions they call back into,
 * and the counters they bump.
 * Internal: nothing outside the repl_* files includes it.
 */
#ifndef REPL_LINK_H
#define REPL_LINK_H

#include <event2/util.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "replication.h"
#include "repl_fsm.h"
#include "repl_net.h"
#include "settings.h"
#include "util.h"

#define REPL_PROTO_VERSION 3
#define MAX_LINKS 4             /* dialled + accepted + spares */
#define MAX_ACCEPTED (MAX_LINKS - 1)    /* one slot is our dial's */
#define SKEW_SAMPLES 8          /* clock samples the skew is taken from */

struct event;
struct event_base;
struct tls;

/* The handshake, one step per line received (doc/replication.txt):
 *
 *   dialler                               acceptor
 *   PAIR 2 <nonce_d>              ---->   HS_WAIT_PAIR
 *   HS_WAIT_PAIR                  <----   PAIR 2 <nonce_a>
 *   AUTH <dial proof>             ---->   HS_WAIT_AUTH: check it
 *   HS_WAIT_AUTH: check it        <----   AUTH <accept proof>, HELLO
 *   HELLO                         ---->   HS_WAIT_HELLO
 *   HS_WAIT_HELLO                         HS_DONE: RESUME ...
 *   HS_DONE: RESUME ...
 *
 * Nothing about the node (run id, node id, clock, -I) leaves before the
 * peer's proof is checked. */
/* enum hs_step is in repl_fsm.h; it moves only by link_hs_set_state(). */

/* Why a link is closed for what its peer sent: picks the counter. */
enum link_fault {
    FAULT_PROTOCOL,             /* does not parse: protocol_errors */
    FAULT_VERSION,              /* a version past the clocks: bad_versions */
    FAULT_AUTH,                 /* failed the secret: auth_failures */
    FAULT_MISMATCH,             /* other protocol or -I: peer_mismatches */
    FAULT_SELF,                 /* we dialled ourselves: not counted */
    FAULT_RESYNC                /* digests differ: counted in repl_check */
};

/* One TCP connection to the peer. */
struct link {
    int fd;                     /* -1: slot free */
    enum repl_state state;      /* link_summary(out_state, in_state) */
    enum link_out out_state;    /* what we send: link_out_set_state() */
    enum link_in in_state;      /* what we receive: link_in_set_state() */
    bool dialled;               /* we connected out (else accepted) */
    bool connecting;            /* non-blocking connect() pending */
    struct event *ev;           /* read/write event */
    short ev_flags;             /* what ev waits for */
    char addr[64];              /* peer address, for logs */
    struct rbuf in;             /* received, not yet parsed */
    size_t in_off;              /* parse position in `in` */
    /* The next record's key hash, worked out while the previous record
     * was applied (for prefetching) and used again when it is applied:
     * valid while hint_ok, for the record at in.data + hint_off. */
    bool hint_ok;
    size_t hint_off;
    uint32_t hint_hv;
    struct rbuf tx;             /* to send (control, walk, stream) */
    size_t tx_off;              /* bytes of tx already sent */
    enum hs_step hs;            /* where the handshake is */
    uint64_t peer_run_id;       /* from HELLO */
    unsigned peer_node_id;      /* from HELLO */
    char peer_nonce[65];        /* from PAIR, hex */
    char nonce[65];             /* ours, hex */
    uint64_t last_rx_us;        /* last byte received */
    uint64_t last_ping_us;      /* last PING sent */
    uint64_t opened_us;         /* accepted or dialled: handshake deadline */
    uint64_t rx_offset;         /* stream bytes applied */
    uint64_t acked_rx;          /* rx_items last acknowledged */
    uint64_t rx_items;          /* records applied */
    uint64_t copy_rx0;          /* rx_items when the peer's SYNC came */
    uint64_t copy_expected;     /* items its SYNC announced */
    uint64_t copy_seen;         /* rx_items at the last progress noted */
    uint64_t copy_moved_us;     /* when the copy last made progress */
    uint64_t peer_acked_items;  /* of ring_records, what the peer applied */
    uint64_t tx_offset;         /* stream bytes handed to the socket */
    uint64_t walk_next;         /* next bucket to walk (0 = start) */
    uint64_t walk_items;        /* items sent by the walk */
    uint64_t walk_bytes;        /* bytes sent by the walk */
    uint64_t walk_start_us;     /* walk start */
    const char *bad;            /* why the peer's bytes were refused */
    enum link_fault fault;      /* ... and what kind of refusal */
    uint64_t vbound;            /* versions up to this are fine: checked */
    int64_t skew_ms;            /* peer clock minus ours: note_skew() */
    uint64_t wake_asked;        /* the stall serial PING w<n> asked for */
    uint64_t pong_window_us;    /* PONGs answered since then ... */
    unsigned pongs;             /* ... this many (at most PONG_PER_SEC) */
    int64_t skew_seen[SKEW_SAMPLES];    /* the last samples, HELLO, PINGs */
    unsigned skew_n;            /* samples taken on this link */
    bool skew_far;              /* skew_ms is over SKEW_WARN_MS (logged) */
    struct tls *tls;       /* TLS session, NULL without repl_tls */
    bool tls_pending;           /* TLS handshake not finished */
    bool read_wants_write;      /* a TLS read waits for writability */
    char channel[65];           /* TLS exported key, binds AUTH; or "" */
    char tls_desc[64];          /* protocol and cipher, for stats */
    char congestion[REPL_CC_NAME_MAX]; /* TCP congestion control, for stats */
};

/*
 * Every line of `stats replication`, in the order printed, declared once:
 *   COUNTER(name, what)    a uint64_t field of repl_rs, printed as is
 *   FIELD(name, what)      a uint64_t field of repl_rs that a LINE prints
 *   LINE(name, fmt, ...)   a line whose value repl_stats() computes (its
 *                          arguments are evaluated there, replication.c)
 * struct repl_stats_s expands the COUNTERs and FIELDs; repl_stats() the
 * COUNTERs and LINEs.  U() casts a value for %llu.
 */
#define U(x) ((unsigned long long)(x))
#define REPL_STATS(COUNTER, FIELD, LINE)                                  \
    LINE(role, "%s", "pair")                                              \
    LINE(peer, "%s:%s", peer_host, peer_port)                             \
    LINE(peer_addr, "%s", peer[0] ? peer : "none")                        \
    LINE(run_id, "%016llx", U(repl_run_id))                               \
    LINE(node_id, "%u", repl_node_id)                                     \
    LINE(link_state, "%s", repl_state_name(st))                           \
    LINE(link_state_secs, "%llu", U((now_us() - since) / 1000000))        \
    LINE(initial_sync_done, "%s", ready_sent ? "yes" : "no")              \
    LINE(peer_synced, "%s",                                               \
         __atomic_load_n(&peer_synced_once, __ATOMIC_RELAXED) ? "yes"     \
                                                              : "no")     \
    FIELD(bytes_sent, "link bytes written (the stream's: ss.sent)")       \
    LINE(bytes_sent, "%llu", U(c.bytes_sent + ss.sent))                   \
    COUNTER(bytes_received, "stream bytes read")                          \
    LINE(items_queued, "%llu", U(ss.items_queued))                        \
    COUNTER(items_received, "records applied")                            \
    COUNTER(items_stale, "records dropped by last writer wins")           \
    LINE(buffer_bytes, "%llu", U(ss.unsent))                              \
    LINE(lag_items, "%llu",                                               \
         U(l != NULL && ss.records > l->peer_acked_items                  \
           ? ss.records - l->peer_acked_items : 0))                       \
    LINE(lag_ms, "%llu", U(lagms))                                        \
    COUNTER(full_syncs, "full copies sent")                               \
    COUNTER(partial_syncs, "backlog catch-ups sent")                      \
    LINE(backlog_size, "%zu", ss.backlog_size)                            \
    LINE(backlog_first_offset, "%llu", U(ss.backlog_first))               \
    LINE(backlog_end_offset, "%llu", U(ss.backlog_end))                   \
    LINE(peer_offset_applied, "%llu", U(repl_applied.off))                \
    FIELD(last_sync_us, "duration of the last full copy")                 \
    LINE(last_sync_ms, "%llu", U(c.last_sync_us / 1000))                  \
    COUNTER(last_sync_items, "its items")                                 \
    COUNTER(last_sync_bytes, "its bytes")                                 \
    LINE(copy_in_progress, "%d", l != NULL && l->in_state == IN_COPY)    \
    LINE(copy_in_items, "%llu", U(l != NULL && l->in_state == IN_COPY     \
                                  ? l->rx_items - l->copy_rx0 : 0))       \
    LINE(copy_in_expected, "%llu", U(l != NULL && l->in_state == IN_COPY  \
                                     ? l->copy_expected : 0))             \
    LINE(sync_in_progress, "%d", l != NULL && l->out_state == OUT_COPY)   \
    LINE(sync_items_sent, "%llu", U(l != NULL ? l->walk_items : 0))       \
    LINE(copy_priority, "%s", copy_is_idle() ? "idle" : "normal")         \
    LINE(copy_starved, "%llu", U(copy_starved_total()))                   \
    COUNTER(links, "links established")                                   \
    COUNTER(reconnects, "links established after the first")              \
    COUNTER(duplicate_links, "duplicate links closed")                    \
    COUNTER(buffer_overflows, "links dropped for a full buffer")          \
    COUNTER(auth_failures, "peers that failed the secret")                \
    COUNTER(protocol_errors, "links closed for bytes that do not parse")  \
    COUNTER(bad_versions, "links closed for a version past the clocks")   \
    COUNTER(handshake_timeouts, "links closed at the handshake deadline") \
    COUNTER(handshake_evictions, "... or for a newer accept, slots full") \
    COUNTER(peer_mismatches, "peers of another protocol or -I")           \
    LINE(limits_differ, "%s",                                             \
         __atomic_load_n(&limits_differ, __ATOMIC_RELAXED) ? "yes" : "no") \
    LINE(digest_checks, "%llu", U(check_count(CHECK_COUNT_DONE)))         \
    LINE(digest_mismatches, "%llu", U(check_count(CHECK_COUNT_MISMATCH))) \
    LINE(digest_repairs, "%llu", U(check_count(CHECK_COUNT_REPAIR)))      \
    COUNTER(store_failures, "peer records we could not store")            \
    COUNTER(peer_store_failures, "our records the peer could not store")  \
    LINE(tls, "%s", tls_repl_enabled()                                    \
         ? (tls_repl_verifies_peer() ? "verify" : "on") : "off")          \
    COUNTER(tls_failures, "TLS handshakes that failed")                   \
    LINE(link_tls, "%s", l != NULL && l->tls != NULL && l->tls_desc[0]    \
         ? l->tls_desc : "none")                                          \
    LINE(link_congestion, "%s",                                           \
         l != NULL && l->congestion[0] ? l->congestion : "none")          \
    LINE(tombstones, "%llu", U(items_tombstones()))                       \
    LINE(stalls, "%llu", U(__atomic_load_n(&stalls, __ATOMIC_RELAXED)))   \
    LINE(stall_state, "%s", wake_state_name(wake_state()))                \
    LINE(stall_holds, "%llu", U(wake_holds()))                            \
    LINE(stall_held_requests, "%llu", U(wake_held_requests()))            \
    LINE(stall_hold_timeouts, "%llu", U(wake_hold_timeouts()))            \
    LINE(stall_abandoned, "%llu", U(wake_abandoned()))                    \
    LINE(stall_last_hold_ms, "%llu", U(wake_last_hold_ms()))              \
    LINE(late_writes, "%llu", U(items_late_writes()))                     \
    LINE(late_superseded, "%llu", U(items_late_superseded()))             \
    LINE(stall_refused_locks, "%llu", U(items_stalled_locks()))           \
    LINE(sync_mode, "%s", settings.repl_sync ? "on" : "off")              \
    LINE(sync_writes, "%llu",                                             \
         U(__atomic_load_n(&sync_waits, __ATOMIC_RELAXED)))               \
    LINE(sync_timeouts, "%llu",                                           \
         U(__atomic_load_n(&sync_timeouts, __ATOMIC_RELAXED)))            \
    LINE(sync_unlinked, "%llu",                                           \
         U(__atomic_load_n(&sync_unlinked, __ATOMIC_RELAXED)))            \
    LINE(sync_failed, "%llu",                                             \
         U(__atomic_load_n(&sync_failed, __ATOMIC_RELAXED)))              \
    LINE(acked_offset, "%llu", U(repl_acked_off()))                       \
    LINE(clock_skew_ms, "%lld", (long long)(l != NULL ? l->skew_ms : 0))  \
    LINE(last_error, "%s", c.last_error[0] ? c.last_error : "none")

#define REPL_STAT_FIELD(name, what) uint64_t name;
#define REPL_STAT_NONE(...)
/* Counters and facts for `stats replication`, under repl_stats_lock
 * (items_received and items_stale: see count_applied()). */
struct repl_stats_s {
    REPL_STATS(REPL_STAT_FIELD, REPL_STAT_FIELD, REPL_STAT_NONE)
    char last_error[128];       /* why the last link ended */
};

extern struct link repl_links[MAX_LINKS];
extern struct link *repl_active;    /* the link carrying the stream */
extern uint64_t repl_run_id;        /* random, this process */
extern unsigned repl_node_id;       /* low byte of our versions */
extern struct event_base *repl_base;    /* the replication thread's */
extern uint64_t repl_yield_us;      /* util_preempt_point() of the thread */
extern pthread_mutex_t repl_stats_lock;
extern struct repl_stats_s repl_rs;

/* Add n to counter `field` of repl_rs. */
#define REPL_COUNT(field, n) do {                                         \
        pthread_mutex_lock(&repl_stats_lock);                             \
        repl_rs.field += (n);                                             \
        pthread_mutex_unlock(&repl_stats_lock);                           \
    } while (0)

/* replication.c: the link state machines.  Each direction changes only
 * here: the transition is checked (repl_fsm.c), logged at -vv, and the
 * summary (l->state, logged at -v) follows. */
void link_hs_set_state(struct link *l, enum hs_step s);
void link_out_set_state(struct link *l, enum link_out s);
void link_in_set_state(struct link *l, enum link_in s);
void link_close(struct link *l, const char *why);
/* Queue a control line: on the stream for the active link, else in tx. */
void send_line(struct link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same for a line already formatted (repl_codec.c's repl_fmt_*). */
void send_ctl(struct link *l, const char *line, size_t n);
/* Refuse the peer: -1, with why and the kind of fault noted on l; the
 * caller's caller closes the link (peer_refused). */
int link_refuse(struct link *l, enum link_fault fault, const char *why);
/* A link passed the handshake: keep it, or close it as a duplicate. */
void link_established(struct link *l);
/* Redial only after the longest back-off (a peer that will refuse us). */
void link_slow_redial(void);
/* The first sync is done (or given up on): open the client port. */
void signal_ready(const char *why);
/* After a stall (holding, or the client port closed again): ask the
 * peer on l, once it is live, for a PONG behind its records
 * (replication.c). */
void wake_ask(struct link *l);
/* Whether the client port is closed again after a stall: it reopens
 * only once the peer's stream is applied up to one of its PINGs. */
bool repl_regated(void);
/* The peer's copy or backlog was applied (stats peer_synced). */
void repl_note_peer_synced(void);
/* Whether the peer's -m or -M differ from ours (stats limits_differ). */
void repl_note_limits(bool differ);
/* For repl_link_io.c: set the summary state (logged at -v); close a
 * link whose peer's bytes were refused (l->fault, l->bad). */
void link_summary_set_state(struct link *l, enum repl_state s);
void link_peer_refused(struct link *l);

/* repl_link_io.c: a link's socket I/O, on the replication thread. */
/* Send what is queued for l (after a slice of a full copy, if one is
 * on); writable: called for EV_WRITE. */
void link_pump(struct link *l, bool writable);
/* Dial the peer unless a link (or a dial) is already there. */
void link_dial(const char *peer_host, const char *peer_port);
/* The replication port's listener and the workers' wake pipe. */
void link_accept_cb(evutil_socket_t fd, short which, void *arg);
void link_wake_cb(evutil_socket_t fd, short which, void *arg);

#endif
