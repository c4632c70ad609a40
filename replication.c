/*
 * replication.c - pair replication.  One thread owns the replication
 * listener, the dialler, the link(s), the stream in both directions and
 * the full resync walk.  Workers only append records to the outbound
 * buffer through the mutation hook.  It does not own storage rules (last
 * writer wins lives in items.c) nor the client ports (memcached.c opens
 * them when the first sync is done).  Design: doc/replication.txt.
 */
#include "memcached.h"
#include "replication.h"
#include "repl_tls.h"
#include "assoc.h"
#include "hash.h"
#include "items.h"
#include "log.h"
#include "settings.h"
#include "thread.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef ENABLE_TLS
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#endif

#define REPL_PROTO_VERSION 2
#define MAX_LINKS 4             /* dialled + accepted + spares */
#define MAX_ACCEPTED (MAX_LINKS - 1)    /* one slot is our dial's */
#define CRON_MS 100             /* timer period */
#define BACKOFF_MIN_MS 100      /* first redial delay */
#define BACKOFF_MAX_MS 5000     /* longest redial delay */
#define SYNC_HIGH_WATER (4 * 1024 * 1024)   /* pause the walk above this */
#define SYNC_SLICE 256          /* buckets walked per step */
#define READ_CHUNK (256 * 1024) /* bytes per read(2) */
#define SKEW_SAMPLES 8          /* clock samples the skew is taken from */
#define SKEW_WARN_MS 1000       /* log a skew larger than this */
#define CATCHUP_CHUNK (256 * 1024)  /* backlog bytes copied per lock */
#define REC_LINE_MAX 1024           /* longest record header */
#define LAG_SAMPLES 256         /* send times kept for lag in ms */
#define SEND_SLICE (256 * 1024)  /* most bytes per send(2) of the stream */
#define APPLY_YIELD 64          /* records applied per preemption point */
#define COPY_STARVED_MS 500     /* cron this late: copy at normal priority */
#define EVP_MAX_MD_SIZE_COMPAT 64   /* largest HMAC we print */
#define VERSION_MS_SHIFT 20     /* items.c: version = ms << 20 | ... */
#define FUTURE_MARGIN_MS (5 * 60 * 1000)    /* versions past the clocks */
#define LEAD_TRUST_MS (24 * 60 * 60 * 1000) /* most peer clock lead used */
#define PEER_MS_MAX (1ULL << 44)    /* larger wall clocks are nonsense */

/* A growable byte buffer. */
struct rbuf {
    char *data;                 /* bytes */
    size_t len;                 /* used */
    size_t cap;                 /* allocated */
};

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
enum hs_step {
    HS_WAIT_PAIR,               /* for the peer's PAIR line */
    HS_WAIT_AUTH,               /* for its proof of the secret */
    HS_WAIT_HELLO,              /* proven; for its HELLO */
    HS_DONE                     /* passed the handshake, kept */
};

/* Why a link is closed for what its peer sent: picks the counter. */
enum link_fault {
    FAULT_PROTOCOL,             /* does not parse: protocol_errors */
    FAULT_VERSION,              /* a version past the clocks: bad_versions */
    FAULT_AUTH,                 /* failed the secret: auth_failures */
    FAULT_MISMATCH,             /* other protocol or -I: peer_mismatches */
    FAULT_SELF                  /* we dialled ourselves: not counted */
};

/* One TCP connection to the peer. */
struct link {
    int fd;                     /* -1: slot free */
    enum repl_state state;      /* REPL_HANDSHAKE .. REPL_LINKED */
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
    uint64_t since_us;          /* state entered */
    uint64_t opened_us;         /* accepted or dialled: handshake deadline */
    uint64_t rx_offset;         /* stream bytes applied */
    uint64_t acked_rx;          /* rx_items last acknowledged */
    uint64_t rx_items;          /* records applied */
    uint64_t peer_acked_items;  /* of ring_records, what the peer applied */
    uint64_t tx_offset;         /* stream bytes handed to the socket */
    uint64_t peer_acked;        /* tx_offset the peer acknowledged */
    bool walking;               /* full copy being sent */
    bool copy_in;               /* full copy being received */
    uint64_t walk_next;         /* next bucket to walk (0 = start) */
    bool walk_started;          /* walk has begun */
    uint64_t walk_items;        /* items sent by the walk */
    uint64_t walk_bytes;        /* bytes sent by the walk */
    uint64_t walk_start_us;     /* walk start */
    bool peer_synced;           /* received SYNCED or PSYNC */
    bool resumed;               /* peer's RESUME handled */
    const char *bad;            /* why the peer's bytes were refused */
    enum link_fault fault;      /* ... and what kind of refusal */
    uint64_t vbound;            /* versions up to this are fine: checked */
    int64_t skew_ms;            /* peer clock minus ours: note_skew() */
    int64_t skew_seen[SKEW_SAMPLES];    /* the last samples, HELLO, PINGs */
    unsigned skew_n;            /* samples taken on this link */
    bool skew_far;              /* skew_ms is over SKEW_WARN_MS (logged) */
    struct repl_tls *tls;       /* TLS session, NULL without repl_tls */
    bool tls_pending;           /* TLS handshake not finished */
    bool read_wants_write;      /* a TLS read waits for writability */
    char channel[65];           /* TLS exported key, binds AUTH; or "" */
    char tls_desc[64];          /* protocol and cipher, for stats */
    char congestion[REPL_CC_NAME_MAX]; /* TCP congestion control, for stats */
};

/* Counters and facts for `stats replication`. */
struct repl_stats_s {
    uint64_t bytes_sent;        /* stream bytes written */
    uint64_t bytes_received;    /* stream bytes read */
    uint64_t items_sent;        /* records queued for the peer */
    uint64_t items_received;    /* records applied */
    uint64_t items_stale;       /* records dropped by last writer wins */
    uint64_t full_syncs;        /* full copies sent */
    uint64_t partial_syncs;     /* backlog catch-ups sent */
    uint64_t reconnects;        /* links established after the first */
    uint64_t links;             /* links established */
    uint64_t overflows;         /* links dropped for a full buffer */
    uint64_t auth_failures;     /* peers that failed the secret */
    uint64_t tls_failures;      /* TLS handshakes that failed */
    uint64_t dup_links;         /* duplicate links closed */
    uint64_t protocol_errors;   /* links closed for bytes that do not parse */
    uint64_t bad_versions;      /* links closed for a version past clocks */
    uint64_t hs_timeouts;       /* links closed at the handshake deadline */
    uint64_t hs_evictions;      /* ... or for a newer accept, slots full */
    uint64_t mismatches;        /* peers of another protocol or -I */
    uint64_t last_sync_us;      /* duration of the last full copy */
    uint64_t last_sync_items;   /* its items */
    uint64_t last_sync_bytes;   /* its bytes */
    char last_error[128];       /* why the last link ended */
};

static struct event_base *rbase;
static pthread_t rtid;
static bool running;
static struct event *cron_ev;
static struct event *listen_ev;
static struct event *wake_ev;
static int listen_fd = -1;
static int wake_rd = -1, wake_wr = -1;
static int ready_fd = -1;       /* written once: client port may open */
static bool ready_sent;
static uint64_t start_us;

static struct link links[MAX_LINKS];
static struct link *active;     /* the link carrying the stream */

static char peer_host[256];     /* from -x */
static char peer_port[16];
static char *secret;            /* from repl_secret_file */
static size_t secret_len;
static uint64_t run_id;         /* random, this process */
static unsigned node_id;        /* low byte of our versions */
static uint64_t next_dial_us;   /* when to dial again */
static unsigned backoff_ms;     /* current redial delay */

/* Outbound stream, filled by workers (the hook) under out_lock. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rbuf outq;
static bool out_enabled;        /* a link wants the stream */
static bool out_woken;          /* a wake byte is pending */
static bool out_overflow;       /* outq grew past repl_buffer_size */
static uint64_t out_items;      /* records queued since start */
/* The active link's socket as seen by workers: they send outq themselves
 * at the end of each event (repl_worker_push), so a replicated write
 * costs no thread switch in the common case. */
static int stream_fd = -1;      /* -1: no active link */
/* With TLS only the replication thread touches the session: workers then
 * wake it instead of sending. */
static struct repl_tls *stream_tls;
/* A full copy is being walked: the replication thread sends the stream
 * (copy and live records) itself, so that workers never spend a client's
 * time pushing megabytes of copy into the socket. */
static bool stream_walking;
/* A partial resync is catching up: live records go only to the backlog,
 * and the replication thread sends ring[psync_next, ring_end) until it
 * reaches the end, in chunks, so that no lock is held for long. */
static bool stream_catchup;
static uint64_t psync_next;
static size_t outq_off;         /* bytes of outq already sent */
/* Direct: in the steady state (no copy, no catch-up, no TLS) records go
 * only to the backlog and are sent from there, from ring_sent on; outq
 * then holds only control lines (ACK, PING), sent when ring_sent reaches
 * ctrl_at, the record boundary at which the first of them was queued.
 * This saves a copy of every record.  Used only when the backlog is at
 * least repl_buffer_size, so that bytes not yet sent cannot be
 * overwritten before the overflow rule drops the link. */
static bool stream_direct;
static uint64_t ring_sent;      /* backlog offset sent up to (direct) */
static uint64_t ctrl_at;        /* where outq's control lines go (direct) */
static bool stream_blocked;     /* socket full: the thread waits EV_WRITE */
static int stream_errno;        /* a send failed: the thread closes */
static uint64_t stream_sent_total;  /* stream bytes sent, all links */

__thread bool repl_dirty;
__thread uint64_t repl_fed_off;
static uint64_t acked_off;      /* atomic: our stream offset the peer applied */
static uint64_t sync_waits, sync_timeouts, sync_unlinked;  /* atomic */

/* Backlog: the last repl_backlog_size bytes of this node's record stream
 * (S/D/T/F records only), by stream offset.  A peer that comes back with
 * an offset still in here gets only what it missed.  Under out_lock. */
static char *ring;              /* repl_backlog_size bytes */
static size_t ring_cap;         /* its size */
static uint64_t ring_end;       /* stream offset after the last record */
static uint64_t ring_records;   /* records fed since start (lag_items) */

/* What we have applied of the peer's stream (replication thread only):
 * kept across links, lost with the process. */
static uint64_t peer_run_applied;   /* the peer run id it belongs to */
static uint64_t peer_off_applied;   /* its stream offset */
static uint64_t peer_rec_applied;   /* its records, counted like the offset */

/* Lag: send time of each batch, by end offset. */
static struct {
    uint64_t end;               /* tx_offset after the batch */
    uint64_t us;                /* when it was queued */
} lag_ring[LAG_SAMPLES];
static unsigned lag_head, lag_tail;
static uint64_t lag_last_end;   /* records count of the newest sample */

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct repl_stats_s rs;
static enum repl_state shown_state = REPL_NONE;
static uint64_t shown_since_us;
static char shown_peer[64];
static uint64_t lag_ms;          /* age of the oldest unacknowledged batch */

/* The replication thread's last yield (util_preempt_point). */
static uint64_t yield_us;

/* The replication thread marks itself so that the hook ignores the
 * writes it applies from the peer. */
static __thread bool applying;

static const char *const state_names[] = {
    "none", "connecting", "handshake", "syncing", "linked"
};

const char *repl_state_name(enum repl_state s)
{
    return s < REPL_MAX_STATE ? state_names[s] : "invalid";
}

bool repl_enabled(void)
{
    return settings.repl_peer != NULL;
}

/* --- buffers -------------------------------------------------------------- */

static bool rbuf_reserve(struct rbuf *b, size_t more)
{
    size_t cap;
    char *nd;

    if (b->len + more <= b->cap) {
        return true;
    }
    cap = b->cap ? b->cap : 16384;
    while (cap < b->len + more) {
        cap *= 2;
    }
    nd = realloc(b->data, cap);
    if (nd == NULL) {
        return false;
    }
    b->data = nd;
    b->cap = cap;
    return true;
}

static bool rbuf_add(struct rbuf *b, const void *p, size_t n)
{
    if (!rbuf_reserve(b, n)) {
        return false;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

static void rbuf_free(struct rbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* --- records ----------------------------------------------------------------
 * Keys with bytes a text line cannot carry travel in base64; " b" marks
 * that, " B" also marks a key the client gave in base64 (meta b).
 */
static bool key_is_plain(const char *key, size_t nkey)
{
    size_t i;

    for (i = 0; i < nkey; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch <= 0x20 || ch == 0x7f) {
            return false;
        }
    }
    return true;
}

static char *put_u64(char *p, uint64_t v)
{
    return p + util_u64toa(v, p);
}

/* Write "<op> <key>" into p; returns the end and sets *mark to the key
 * marker to append at the end of the line (" b", " B" or ""). */
static char *put_key(char *p, char op, const char *key, size_t nkey,
                     bool binary, const char **mark)
{
    *p++ = op;
    *p++ = ' ';
    if (!binary && key_is_plain(key, nkey)) {
        memcpy(p, key, nkey);
        *mark = "";
        return p + nkey;
    }
    *mark = binary ? " B" : " b";
    return p + util_b64_encode(key, nkey, p);
}

/* Header of an S record for it (op 's' in a full copy, which does not
 * count towards stream offsets); buf has REC_LINE_MAX bytes. */
static size_t format_store_op(char *buf, const struct item *it, char op)
{
    const char *mark;
    char *p = put_key(buf, op, ITEM_key(it), it->nkey,
                      (it->it_flags & ITEM_KEY_BINARY) != 0, &mark);

    *p++ = ' ';
    p = put_u64(p, it->flags);
    *p++ = ' ';
    p = put_u64(p, it->exptime);
    *p++ = ' ';
    p = put_u64(p, it->version);
    *p++ = ' ';
    p = put_u64(p, it->nbytes - 2);
    memcpy(p, mark, strlen(mark));
    p += strlen(mark);
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - buf);
}

static size_t format_store(char *buf, const struct item *it)
{
    return format_store_op(buf, it, 'S');
}

/* Wake the replication thread if the buffer just became non-empty.
 * Caller holds out_lock. */
static void wake_locked(void)
{
    if (!out_woken) {
        char b = 'w';
        out_woken = true;
        if (write(wake_wr, &b, 1) != 1) {
            /* Full pipe: a wake-up is pending anyway. */
        }
    }
}

static void lag_note_locked(uint64_t end);

/* The largest flush cutoff this node has made or accepted: a delayed
 * flush_all cuts at a version in the future, which the peer's clock
 * then takes on (item_apply_flush), so its versions may run that far
 * ahead.  Atomic: workers raise it through the hook. */
static uint64_t flush_seen;

static void note_flush_cutoff(uint64_t cutoff)
{
    uint64_t cur = __atomic_load_n(&flush_seen, __ATOMIC_RELAXED);

    while (cutoff > cur &&
           !__atomic_compare_exchange_n(&flush_seen, &cur, cutoff, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void ring_put_locked(const char *p, size_t n)
{
    while (n > 0 && ring_cap > 0) {
        size_t pos = (size_t)(ring_end % ring_cap);
        size_t k = ring_cap - pos < n ? ring_cap - pos : n;
        memcpy(ring + pos, p, k);
        ring_end += k;
        p += k;
        n -= k;
    }
}

/* Oldest offset still in the ring. */
static uint64_t ring_start_locked(void)
{
    return ring_end > ring_cap ? ring_end - ring_cap : 0;
}

/* Append up to max bytes of ring[from, ring_end) to b; returns how many
 * (0 on allocation failure).  `from` must still be in the ring. */
static size_t ring_copy_locked(uint64_t from, size_t max, struct rbuf *b)
{
    size_t done = 0;

    while (from < ring_end && done < max) {
        size_t pos = (size_t)(from % ring_cap);
        size_t k = ring_cap - pos;
        if (k > ring_end - from) {
            k = (size_t)(ring_end - from);
        }
        if (k > max - done) {
            k = max - done;
        }
        if (!rbuf_add(b, ring + pos, k)) {
            return 0;
        }
        from += k;
        done += k;
    }
    return done;
}

/* The mutation hook (items.c), called by workers with the key's stripe
 * lock held. */
static void repl_feed(enum mutation_op op, const struct item *it,
                      uint64_t version, uint32_t exptime)
{
    char hdr[REC_LINE_MAX];
    size_t n;
    const char *mark = "";
    char *p;

    if (applying || !running) {
        return;
    }
    switch (op) {
    case MUT_STORE:
        n = format_store(hdr, it);
        break;
    case MUT_DELETE:
        p = put_key(hdr, 'D', ITEM_key(it), it->nkey,
                    (it->it_flags & ITEM_KEY_BINARY) != 0, &mark);
        *p++ = ' ';
        p = put_u64(p, version);
        n = (size_t)(p - hdr);
        break;
    case MUT_TOUCH:
        p = put_key(hdr, 'T', ITEM_key(it), it->nkey,
                    (it->it_flags & ITEM_KEY_BINARY) != 0, &mark);
        *p++ = ' ';
        p = put_u64(p, exptime);
        *p++ = ' ';
        p = put_u64(p, version);
        n = (size_t)(p - hdr);
        break;
    case MUT_FLUSH:
    default:
        note_flush_cutoff(version);
        p = hdr;
        *p++ = 'F';
        *p++ = ' ';
        p = put_u64(p, version);
        *p++ = ' ';
        p = put_u64(p, exptime);
        n = (size_t)(p - hdr);
        break;
    }
    if (op != MUT_STORE) {
        memcpy(hdr + n, mark, strlen(mark));
        n += strlen(mark);
        hdr[n++] = '\r';
        hdr[n++] = '\n';
    }
    pthread_mutex_lock(&out_lock);
    ring_put_locked(hdr, n);
    if (op == MUT_STORE) {
        ring_put_locked(ITEM_data(it), it->nbytes);
    }
    repl_fed_off = ring_end;
    ring_records++;
    if (!out_enabled || out_overflow || stream_catchup) {
        pthread_mutex_unlock(&out_lock);
        return;
    }
    if (stream_direct) {
        if (ring_end - ring_sent > settings.repl_buffer_size) {
            out_overflow = true;        /* see below */
            wake_locked();
        } else {
            out_items++;
            repl_dirty = true;
        }
        pthread_mutex_unlock(&out_lock);
        return;
    }
    if (outq.len - outq_off + n + (op == MUT_STORE ? it->nbytes : 0) >
            settings.repl_buffer_size ||
        !rbuf_add(&outq, hdr, n) ||
        (op == MUT_STORE && !rbuf_add(&outq, ITEM_data(it), it->nbytes))) {
        /* The peer cannot keep up: the link will be dropped and the
         * redial resyncs in full.  Never a silent stop. */
        out_overflow = true;
        wake_locked();
    } else {
        out_items++;
        repl_dirty = true;
    }
    pthread_mutex_unlock(&out_lock);
}

/* Why a read or send of n bytes failed with errno err, for last_error:
 * an end of file, or EPIPE from a send after it, means the peer closed. */
static const char *io_failure(ssize_t n, int err)
{
    return n == 0 || err == EPIPE ? "peer closed" : strerror(err);
}

/* send(2) without blocking, through TLS when the link has it. */
static ssize_t io_send(int fd, struct repl_tls *tls, const char *p, size_t n)
{
    enum repl_tls_want want;

    if (tls != NULL) {
        return repl_tls_write(tls, p, n, &want);
    }
    return send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Send what outq holds on the active link's socket, without blocking,
 * and at most SEND_SLICE bytes: one send(2) of megabytes over loopback is
 * milliseconds in the kernel, where (with the usual voluntary-preemption
 * kernels) nothing preempts it, all under out_lock.  Caller holds
 * out_lock (a worker, or the replication thread).  Returns true when
 * bytes are left for another call. */
static bool push_locked(bool by_thread)
{
    size_t sent = 0;

    if (stream_fd < 0 || stream_blocked || stream_errno != 0) {
        return false;
    }
    if (stream_walking && !by_thread) {
        return false;           /* the walking thread sends it shortly */
    }
    if (stream_tls != NULL && !by_thread) {
        if (outq_off < outq.len) {
            wake_locked();
        }
        return false;
    }
    if (stream_direct && out_overflow) {
        return false;           /* unsent bytes may be overwritten: resync */
    }
    if (outq_off < outq.len || (stream_direct && ring_sent < ring_end)) {
        lag_note_locked(ring_records);
    }
    for (;;) {
        const char *p;
        size_t want;
        ssize_t n;
        bool from_ring;

        if (outq_off < outq.len && (!stream_direct || ring_sent == ctrl_at)) {
            p = outq.data + outq_off;
            want = outq.len - outq_off;
            from_ring = false;
        } else if (stream_direct && ring_sent < ring_end) {
            uint64_t to = outq_off < outq.len ? ctrl_at : ring_end;
            size_t pos = (size_t)(ring_sent % ring_cap);
            p = ring + pos;
            want = (size_t)(to - ring_sent);
            if (want > ring_cap - pos) {
                want = ring_cap - pos;  /* up to the wrap; then the rest */
            }
            from_ring = true;
        } else {
            break;
        }
        if (sent >= SEND_SLICE) {
            if (!by_thread) {
                wake_locked();  /* the thread sends the rest */
            }
            return true;
        }
        n = io_send(stream_fd, stream_tls, p,
                    want < SEND_SLICE ? want : SEND_SLICE);
        if (n > 0) {
            if (from_ring) {
                ring_sent += (uint64_t)n;
            } else {
                outq_off += (size_t)n;
            }
            sent += (size_t)n;
            stream_sent_total += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            stream_blocked = true;      /* the thread waits for EV_WRITE */
        } else {
            stream_errno = n == 0 ? EPIPE : errno;
        }
        if (!by_thread) {
            wake_locked();
        }
        return false;
    }
    outq.len = outq_off = 0;
    if (outq.cap > 4 * SYNC_HIGH_WATER) {
        rbuf_free(&outq);
    }
    if (!stream_direct && !stream_walking && !stream_catchup &&
        stream_tls == NULL && ring_cap >= settings.repl_buffer_size) {
        /* Everything fed so far is sent: from here on, send from the
         * backlog. */
        stream_direct = true;
        ring_sent = ring_end;
    }
    return false;
}

void repl_worker_push(void)
{
    repl_dirty = false;
    pthread_mutex_lock(&out_lock);
    push_locked(false);
    pthread_mutex_unlock(&out_lock);
}

/* --- link bookkeeping --------------------------------------------------------- */

static uint64_t now_us(void)
{
    return util_mono_us();
}

static void set_shown(enum repl_state s, const char *peer)
{
    pthread_mutex_lock(&stats_lock);
    if (shown_state != s) {
        shown_state = s;
        shown_since_us = now_us();
    }
    if (peer != NULL) {
        snprintf(shown_peer, sizeof(shown_peer), "%s", peer);
    }
    pthread_mutex_unlock(&stats_lock);
}

static void link_set_state(struct link *l, enum repl_state s)
{
    if (l->state == s) {
        return;
    }
    log_info("replication %s: %s -> %s", l->addr, repl_state_name(l->state),
             repl_state_name(s));
    l->state = s;
    l->since_us = now_us();
    if (l == active || s >= REPL_SYNCING) {
        set_shown(s, l->addr);
    }
}

static void link_error(struct link *l, const char *why)
{
    pthread_mutex_lock(&stats_lock);
    snprintf(rs.last_error, sizeof(rs.last_error), "%s: %s", l->addr, why);
    pthread_mutex_unlock(&stats_lock);
}

/* --- scheduling class of the replication thread -------------------------------
 * A full copy is bulk work: while this node sends one (walk) or receives
 * one (between SYNC and SYNCED), the replication thread runs as
 * SCHED_IDLE (-o repl_idle_copy=1, the default), so a client request on
 * the machine preempts it at once instead of waiting for the end of its
 * time slice.  Normal class again when the copy ends or the link closes.
 * An idle-class thread gets only a sliver of a saturated CPU, and may
 * not even get to notice that.  So the main thread watches it (once a
 * second, repl_watchdog): when the replication timer has not run for
 * COPY_STARVED_MS, it moves the thread back to the normal class for the
 * rest of the copy; a busy machine slows a copy down but cannot stall it
 * or time the link out.  copy_idle and copy_starved are shared with the
 * main thread: atomics. */
static bool copy_idle, copy_starved;
static uint64_t copy_starved_count;     /* stats: copies moved to normal */
static pid_t repl_tid;                  /* the replication thread */
static uint64_t cron_last_us;           /* its timer's last run; atomic */

static void *sched_probe_main(void *arg)
{
    bool *ok = arg;
    struct sched_param sp = { .sched_priority = 0 };

    *ok = sched_setscheduler(0, SCHED_IDLE, &sp) == 0 &&
          sched_setscheduler(0, SCHED_OTHER, &sp) == 0;
    return NULL;
}

/* Any thread may enter SCHED_IDLE, but only CAP_SYS_NICE or an
 * RLIMIT_NICE of 20 lets it leave (memcached.c raises the limit before
 * dropping root).  A throwaway thread tries both ways once. */
static bool idle_copy_possible(void)
{
    static int known = -1;      /* replication thread only */
    bool ok = false;
    pthread_t t;

    if (known >= 0) {
        return known == 1;
    }
    if (pthread_create(&t, NULL, sched_probe_main, &ok) == 0) {
        pthread_join(t, NULL);
    }
    known = ok ? 1 : 0;
    if (!ok) {
        log_warn("replication: a thread cannot return from idle CPU "
                 "priority here (needs CAP_SYS_NICE or RLIMIT_NICE 20); "
                 "full copies run at normal priority");
    }
    return ok;
}

/* Call after a link starts or ends sending or receiving a copy, or
 * closes: the class follows whether any open link is copying. */
static void copy_sched_update(void)
{
    bool copying = false, want;
    struct sched_param sp = { .sched_priority = 0 };
    int i;

    for (i = 0; i < MAX_LINKS; i++) {
        if (links[i].fd >= 0 && (links[i].walking || links[i].copy_in)) {
            copying = true;
        }
    }
    if (!copying) {
        __atomic_store_n(&copy_starved, false, __ATOMIC_RELAXED);
    }
    want = settings.repl_idle_copy && copying &&
           !__atomic_load_n(&copy_starved, __ATOMIC_RELAXED);
    if (want == __atomic_load_n(&copy_idle, __ATOMIC_RELAXED) ||
        (want && !idle_copy_possible())) {
        return;
    }
    if (sched_setscheduler(0, want ? SCHED_IDLE : SCHED_OTHER, &sp) != 0) {
        log_warn("replication: cannot change the thread's scheduling "
                 "class: %s", strerror(errno));
        return;
    }
    __atomic_store_n(&copy_idle, want, __ATOMIC_RELAXED);
}

static void link_close(struct link *l, const char *why)
{
    if (l->fd < 0) {
        return;
    }
    log_info("replication %s: link closed (%s)", l->addr, why);
    link_error(l, why);
    if (l == active) {
        pthread_mutex_lock(&out_lock);
        stream_fd = -1;         /* workers stop sending before close(2) */
        stream_tls = NULL;
        stream_walking = false;
        stream_direct = false;
        out_enabled = false;
        outq.len = outq_off = 0;
        out_overflow = false;
        stream_blocked = false;
        stream_errno = 0;
        lag_head = lag_tail = 0;
        pthread_mutex_unlock(&out_lock);
    }
    event_free(l->ev);
    l->ev = NULL;
    repl_tls_free(l->tls);
    l->tls = NULL;
    close(l->fd);
    l->fd = -1;
    rbuf_free(&l->in);
    l->hint_ok = false;
    rbuf_free(&l->tx);
    copy_sched_update();        /* fd is -1: this link copies no more */
    if (l == active) {
        active = NULL;
        set_shown(REPL_CONNECTING, NULL);
        next_dial_us = now_us() + (uint64_t)backoff_ms * 1000;
    }
    l->state = REPL_NONE;
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
        if (links[i].fd >= 0 && !links[i].dialled) {
            accepted++;
        }
    }
    for (i = 0; i < MAX_LINKS; i++) {
        if (links[i].fd < 0 && (dialled || accepted < MAX_ACCEPTED)) {
            return &links[i];
        }
    }
    if (dialled) {
        return NULL;
    }
    for (i = 0; i < MAX_LINKS; i++) {
        struct link *l = &links[i];
        if (l->fd >= 0 && !l->dialled && l->hs != HS_DONE &&
            (oldest == NULL || l->opened_us < oldest->opened_us)) {
            oldest = l;
        }
    }
    if (oldest != NULL) {
        pthread_mutex_lock(&stats_lock);
        rs.hs_evictions++;
        pthread_mutex_unlock(&stats_lock);
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
    if (event_assign(l->ev, rbase, l->fd, flags, link_event, l) != 0 ||
        event_add(l->ev, NULL) != 0) {
        return false;
    }
    l->ev_flags = flags;
    return true;
}

static void random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t i;

    if (nbytes > sizeof(raw) ||
        getrandom(raw, nbytes, 0) != (ssize_t)nbytes) {
        /* getrandom on Linux >= 3.17 does not fail for small sizes; fall
         * back to the clock so that nonces still differ. */
        uint64_t t = now_us() ^ (uint64_t)getpid();
        for (i = 0; i < nbytes && i < sizeof(raw); i++) {
            raw[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)i;
        }
    }
    for (i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

/* The congestion control the link asks for: repl_tcp_congestion, or
 * cubic when it is not given; NULL to keep the system's. */
static const char *wanted_congestion(void)
{
    const char *cc = settings.repl_tcp_congestion;

    if (cc == NULL) {
        return "cubic";
    }
    return strcmp(cc, "system") == 0 ? NULL : cc;
}

static bool set_congestion(int fd, const char *cc)
{
    return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc,
                      (socklen_t)strlen(cc)) == 0;
}

/* Socket options of a new link; l->congestion shows what it got.
 *
 * The link is one long-lived bulk flow between two nearby servers.  A
 * system default of BBR without the fq qdisc makes TCP pace every burst
 * itself with a timer; measured here, that costs the pair 6% more CPU
 * per replicated 4 KB set than cubic, for no gain on a LAN.  So the
 * link asks for cubic unless told otherwise; if the kernel refuses (not
 * built in, or not in tcp_allowed_congestion_control), the link keeps
 * the system's, which an explicit -o repl_tcp_congestion never gets to:
 * repl_configure() tries it at start. */
static void tune_socket(struct link *l)
{
    const char *cc = wanted_congestion();
    socklen_t len = sizeof(l->congestion) - 1;
    int one = 1;

    setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(l->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    if (cc != NULL && !set_congestion(l->fd, cc)) {
        log_info("replication %s: congestion control %s refused (%s); "
                 "keeping the system's", l->addr, cc, strerror(errno));
    }
    memset(l->congestion, 0, sizeof(l->congestion));
    if (getsockopt(l->fd, IPPROTO_TCP, TCP_CONGESTION, l->congestion,
                   &len) != 0) {
        l->congestion[0] = '\0';
    }
}

static bool link_open(struct link *l, int fd, bool dialled, const char *addr)
{
    char line[96];
    int n;

    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->dialled = dialled;
    l->state = REPL_NONE;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    tune_socket(l);
    l->ev = event_new(rbase, fd, EV_READ | EV_PERSIST, link_event, l);
    if (l->ev == NULL || event_add(l->ev, NULL) != 0) {
        close(fd);
        l->fd = -1;
        return false;
    }
    l->ev_flags = EV_READ | EV_PERSIST;
    l->last_rx_us = now_us();
    l->opened_us = l->last_rx_us;
    if (repl_tls_enabled()) {
        l->tls = repl_tls_new(fd, dialled);
        if (l->tls == NULL) {
            event_free(l->ev);
            l->ev = NULL;
            close(fd);
            l->fd = -1;
            return false;
        }
        l->tls_pending = true;
    }
    random_hex(l->nonce, 32);
    link_set_state(l, REPL_HANDSHAKE);
    if (dialled) {
        /* The dialler speaks first; the acceptor says nothing until it
         * has the dialler's PAIR. */
        n = snprintf(line, sizeof(line), "PAIR %d %s\r\n",
                     REPL_PROTO_VERSION, l->nonce);
        rbuf_add(&l->tx, line, (size_t)n);
    }
    return true;
}

/* --- sending ----------------------------------------------------------------- */


static void lag_note_locked(uint64_t end)
{
    unsigned next = (lag_head + 1) % LAG_SAMPLES;

    if (end <= lag_last_end) {
        return;                 /* no new records since the last note */
    }
    lag_last_end = end;
    if (next == lag_tail) {
        /* Full: extend the newest batch instead of dropping the oldest,
         * which would hide the age of what the peer has not applied. */
        lag_ring[(lag_head + LAG_SAMPLES - 1) % LAG_SAMPLES].end = end;
        return;
    }
    lag_ring[lag_head].end = end;
    lag_ring[lag_head].us = now_us();
    lag_head = next;
}

/* Send l->tx: 1 all sent, 0 the socket is full (EV_WRITE asked for),
 * -1 the link was closed. */
static int tx_send(struct link *l)
{
    while (l->tx_off < l->tx.len) {
        ssize_t n = io_send(l->fd, l->tls, l->tx.data + l->tx_off,
                            l->tx.len - l->tx_off);
        if (n > 0) {
            l->tx_off += (size_t)n;
            l->tx_offset += (uint64_t)n;
            pthread_mutex_lock(&stats_lock);
            rs.bytes_sent += (uint64_t)n;
            pthread_mutex_unlock(&stats_lock);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!link_want(l, EV_READ | EV_WRITE)) {
                link_close(l, "event error");
                return -1;
            }
            return 0;
        }
        link_close(l, io_failure(n, errno));
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
        pthread_mutex_lock(&out_lock);
        if (!stream_catchup) {
            pthread_mutex_unlock(&out_lock);
            return 1;
        }
        if (psync_next < ring_start_locked()) {
            lost = true;        /* overwritten before we sent it */
        } else if (psync_next == ring_end) {
            stream_catchup = false;
            stream_walking = l->walking;
            pthread_mutex_unlock(&out_lock);
            log_info("replication %s: caught up from the backlog", l->addr);
            return 1;
        } else {
            size_t k = ring_copy_locked(psync_next, CATCHUP_CHUNK, &l->tx);
            lost = k == 0;
            psync_next += k;
        }
        pthread_mutex_unlock(&out_lock);
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
    if (l == active && out_enabled) {
        bool blocked, overflow;
        int err;
        int r = catch_up(l);
        if (r <= 0) {
            return r == 0;      /* waiting for the socket, or closed */
        }
        pthread_mutex_lock(&out_lock);
        if (writable) {
            stream_blocked = false;
        }
        /* Drop the lock between slices so that writers are not held up
         * behind a long transfer. */
        while (push_locked(true)) {
            pthread_mutex_unlock(&out_lock);
            pthread_mutex_lock(&out_lock);
        }
        blocked = stream_blocked;
        err = stream_errno;
        overflow = out_overflow;
        out_woken = false;
        pthread_mutex_unlock(&out_lock);
        if (overflow) {
            pthread_mutex_lock(&stats_lock);
            rs.overflows++;
            pthread_mutex_unlock(&stats_lock);
            log_warn("replication %s: outbound buffer over %zu bytes; "
                     "dropping the link to resync", l->addr,
                     settings.repl_buffer_size);
            link_close(l, "outbound buffer overflow");
            return false;
        }
        if (err != 0) {
            link_close(l, io_failure(-1, err));
            return false;
        }
        /* A walk that was paused above SYNC_HIGH_WATER resumes on the
         * next event; when this flush emptied the queue without filling
         * the socket, no other event may come for a while, so ask for
         * EV_WRITE, which fires at once while the socket has room. */
        return link_want(l, blocked || l->walking ? EV_READ | EV_WRITE
                                                  : EV_READ) ||
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

static void send_line(struct link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void send_line(struct link *l, const char *fmt, ...)
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
    if (l == active && out_enabled) {
        pthread_mutex_lock(&out_lock);
        if (stream_direct && outq_off == outq.len) {
            ctrl_at = ring_end;         /* after the records fed so far */
        }
        if (!rbuf_add(&outq, line, (size_t)n)) {
            out_overflow = true;        /* out of memory: resync */
        }
        pthread_mutex_unlock(&out_lock);
    } else {
        rbuf_add(&l->tx, line, (size_t)n);
    }
}

/* --- handshake -------------------------------------------------------------- */

/* Decimal digits only, no sign, no overflow past 64 bits. */
static bool parse_u64(const char *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0 || len > 20) {
        return false;
    }
    /* 19 digits never overflow; only a 20th needs checking. */
    for (i = 0; i < len && i < 19; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (d > 9) {
            return false;
        }
        v = v * 10 + d;
    }
    if (len == 20) {
        unsigned d = (unsigned)(p[19] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

struct field {
    const char *p;              /* first byte */
    size_t len;                 /* bytes */
};

/* Split line[0..len) on single spaces into at most max fields. */
static int split(const char *line, size_t len, struct field *f, int max)
{
    int n = 0;
    size_t i, start = 0;

    for (i = 0; i <= len && n < max; i++) {
        if (i == len || line[i] == ' ') {
            f[n].p = line + start;
            f[n].len = i - start;
            n++;
            start = i + 1;
        }
    }
    return (i <= len) ? -1 : n;     /* -1: more fields than max */
}

static bool field_is(const struct field *f, const char *word)
{
    size_t n = strlen(word);
    return f->len == n && memcmp(f->p, word, n) == 0;
}

static bool field_u64(const struct field *f, uint64_t *out)
{
    return parse_u64(f->p, f->len, out);
}


/*
 * The proof of the secret.  Each side proves in its own direction, over
 * both nonces, its own first:
 *
 *   dialler:  HMAC-SHA256(secret, "paircached-v2|dial|"   nd "|" na [ch])
 *   acceptor: HMAC-SHA256(secret, "paircached-v2|accept|" na "|" nd [ch])
 *
 * ch is "|" and the TLS exporter's 64 hex digits over TLS, else empty.
 * The direction label means no proof can be reflected as the other
 * side's; both fresh nonces mean none can be replayed; and the acceptor
 * sends its proof only after checking the dialler's, so nobody gets an
 * acceptor's proof without first presenting a valid dialler's.  out has
 * 2 * EVP_MAX_MD_SIZE_COMPAT + 1 bytes; without a secret it is "none".
 */
static void hmac_hex(bool dial, const char *mine, const char *theirs,
                     const char *channel, char *out)
{
#ifdef ENABLE_TLS
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0, i;
    char msg[256];
    int n;

    if (secret == NULL) {
        snprintf(out, 2 * EVP_MAX_MD_SIZE_COMPAT + 1, "none");
        return;
    }
    n = snprintf(msg, sizeof(msg), "paircached-v2|%s|%s|%s%s%s",
                 dial ? "dial" : "accept", mine, theirs,
                 channel[0] ? "|" : "", channel);
    HMAC(EVP_sha256(), secret, (int)secret_len, (unsigned char *)msg,
         (size_t)n, mac, &mlen);
    for (i = 0; i < mlen && i < EVP_MAX_MD_SIZE_COMPAT; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[2 * i] = '\0';
#else
    (void)dial;
    (void)mine;
    (void)theirs;
    (void)channel;
    snprintf(out, 2 * EVP_MAX_MD_SIZE_COMPAT + 1, "none");
#endif
}

/* Compare in constant time: a[0..la) against the string b. */
static bool same_secret_proof(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b), i;
    unsigned char d = (unsigned char)(la != lb);

    for (i = 0; i < la && i < lb; i++) {
        d |= (unsigned char)(a[i] ^ b[i]);
    }
    return d == 0;
}

/* The preferred link is the one dialled by the node with the smaller run
 * id; both sides compute the same answer. */
static bool preferred(const struct link *l)
{
    bool dialled_by_lower = l->dialled ? run_id < l->peer_run_id
                                       : l->peer_run_id < run_id;
    return dialled_by_lower;
}

static void start_sync(struct link *l);
static bool handle_resume(struct link *l, const char *line);

/* A link passed the handshake: keep it, or close it as a duplicate. */
static void link_established(struct link *l)
{
    if (active != NULL && active != l) {
        if (!preferred(l) || preferred(active)) {
            pthread_mutex_lock(&stats_lock);
            rs.dup_links++;
            pthread_mutex_unlock(&stats_lock);
            link_close(l, "duplicate link");
            return;
        }
        pthread_mutex_lock(&stats_lock);
        rs.dup_links++;
        pthread_mutex_unlock(&stats_lock);
        link_close(active, "duplicate link");
    }
    if (l->peer_node_id == node_id && run_id > l->peer_run_id) {
        /* Same low byte in both nodes' versions: the larger run id moves
         * away, so versions stay unique across the pair. */
        node_id = (node_id + 1 + (unsigned)(run_id % 254)) & 0xFF;
        if (node_id == l->peer_node_id) {
            node_id = (node_id + 1) & 0xFF;
        }
        items_set_node_id(node_id);
        log_info("replication: node id clashes with the peer's; now %u",
                 node_id);
    }
    active = l;
    l->hs = HS_DONE;
    backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_lock(&stats_lock);
    if (rs.links++ > 0) {
        rs.reconnects++;
    }
    pthread_mutex_unlock(&stats_lock);
    /* Tell the peer how much of its stream we have; it answers with the
     * missing part (PSYNC) or a full copy (SYNC). */
    send_line(l, "RESUME %llu %llu %llu\r\n",
              (unsigned long long)(peer_run_applied == l->peer_run_id
                                   ? peer_run_applied : 0),
              (unsigned long long)(peer_run_applied == l->peer_run_id
                                   ? peer_off_applied : 0),
              (unsigned long long)(peer_run_applied == l->peer_run_id
                                   ? peer_rec_applied : 0));
}

/*
 * A sample of the peer's wall clock (HELLO, PING), in ms.  Each sample
 * is the true skew minus however long the line took to be sent, carried
 * and handled, never plus, so the largest of the last few is the best
 * estimate: a line handled late (a starved thread, a stopped peer
 * resumed) does not move it.  Logged once when it goes over
 * SKEW_WARN_MS either way, and once when it is back.
 */
static void note_skew(struct link *l, uint64_t peer_ms)
{
    int64_t best;
    unsigned i, n;
    bool far;

    if (peer_ms > PEER_MS_MAX) {
        peer_ms = PEER_MS_MAX;  /* no overflow below, whatever it sent */
    }
    l->skew_seen[l->skew_n++ % SKEW_SAMPLES] =
        (int64_t)peer_ms - (int64_t)util_now_ms();
    n = l->skew_n < SKEW_SAMPLES ? l->skew_n : SKEW_SAMPLES;
    best = l->skew_seen[0];
    for (i = 1; i < n; i++) {
        if (l->skew_seen[i] > best) {
            best = l->skew_seen[i];
        }
    }
    l->skew_ms = best;
    far = best > SKEW_WARN_MS || best < -SKEW_WARN_MS;
    if (far && !l->skew_far) {
        log_warn("replication %s: peer clock differs from ours by %lld ms",
                 l->addr, (long long)best);
    } else if (!far && l->skew_far) {
        log_info("replication %s: peer clock within %d ms of ours again "
                 "(%lld ms)", l->addr, SKEW_WARN_MS, (long long)best);
    }
    l->skew_far = far;
}

/* Refuse the peer: -1 for apply_one, with why and the kind of fault. */
static int refuse(struct link *l, enum link_fault fault, const char *why)
{
    l->fault = fault;
    l->bad = why;
    return -1;
}

/* 64 lower-case hex digits: a nonce or an HMAC-SHA256. */
static bool field_hex64(const struct field *f)
{
    size_t i;

    if (f->len != 64) {
        return false;
    }
    for (i = 0; i < 64; i++) {
        char c = f->p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* Best effort, before closing: a line the peer can read (or tcpdump). */
static void send_now(struct link *l, const char *line)
{
    (void)io_send(l->fd, l->tls, line, strlen(line));
}

/* PAIR <version> <nonce>: the dialler's first line, or the acceptor's
 * answer to it.  An old or newer peer gets a clear error. */
static int hs_pair(struct link *l, const struct field *f, int nf)
{
    uint64_t version;

    if (nf < 2 || !field_is(&f[0], "PAIR") || !field_u64(&f[1], &version)) {
        return refuse(l, FAULT_PROTOCOL, "no PAIR line first");
    }
    if (version != REPL_PROTO_VERSION) {
        static char why[80];
        snprintf(why, sizeof(why), "the peer speaks replication protocol "
                 "%llu, this node %d", (unsigned long long)version,
                 REPL_PROTO_VERSION);
        if (!l->dialled) {
            char line[96];
            snprintf(line, sizeof(line), "ERROR replication protocol %d "
                     "required\r\n", REPL_PROTO_VERSION);
            send_now(l, line);
        }
        return refuse(l, FAULT_MISMATCH, why);
    }
    if (nf != 3 || !field_hex64(&f[2])) {
        return refuse(l, FAULT_PROTOCOL, "a malformed PAIR line");
    }
    memcpy(l->peer_nonce, f[2].p, 64);
    l->peer_nonce[64] = '\0';
    if (l->dialled) {
        char mac[2 * EVP_MAX_MD_SIZE_COMPAT + 1];
        hmac_hex(true, l->nonce, l->peer_nonce, l->channel, mac);
        send_line(l, "AUTH %s\r\n", mac);
    } else {
        send_line(l, "PAIR %d %s\r\n", REPL_PROTO_VERSION, l->nonce);
    }
    l->hs = HS_WAIT_AUTH;
    return 1;
}

/* What this node tells a peer that proved the secret. */
static void send_hello(struct link *l)
{
    send_line(l, "HELLO %llu %u %llu %llu\r\n", (unsigned long long)run_id,
              node_id, (unsigned long long)util_now_ms(),
              (unsigned long long)settings.item_size_max);
}

/* AUTH <proof>: the dialler's first (checked by the acceptor, which then
 * proves itself and says HELLO), then the acceptor's (checked by the
 * dialler, which then says HELLO).  A bad or missing proof closes the
 * link with nothing more sent. */
static int hs_auth(struct link *l, const struct field *f, int nf)
{
    char want[2 * EVP_MAX_MD_SIZE_COMPAT + 1];

    if (nf != 2 || !field_is(&f[0], "AUTH")) {
        return refuse(l, FAULT_AUTH, "no AUTH line after PAIR");
    }
    if (secret == NULL && !field_is(&f[1], "none")) {
        return refuse(l, FAULT_AUTH, "the peer has a secret, this node "
                      "none (repl_secret_file)");
    }
    if (secret != NULL && field_is(&f[1], "none")) {
        return refuse(l, FAULT_AUTH, "the peer has no secret "
                      "(repl_secret_file)");
    }
    /* The peer proves in the other direction, its nonce first. */
    hmac_hex(!l->dialled, l->peer_nonce, l->nonce, l->channel, want);
    if (!same_secret_proof(f[1].p, f[1].len, want)) {
        return refuse(l, FAULT_AUTH, "a wrong proof of the secret");
    }
    if (!l->dialled) {
        hmac_hex(false, l->nonce, l->peer_nonce, l->channel, want);
        send_line(l, "AUTH %s\r\n", want);
    }
    send_hello(l);
    l->hs = HS_WAIT_HELLO;
    return 1;
}

/* Different -I on the two nodes: say so, and redial only slowly. */
static int item_size_mismatch(struct link *l, uint64_t theirs)
{
    static char why[120];

    snprintf(why, sizeof(why), "the peer's item size max (-I) is %llu "
             "bytes, this node's %d: run both with the same -I",
             (unsigned long long)theirs, settings.item_size_max);
    backoff_ms = BACKOFF_MAX_MS;
    next_dial_us = now_us() + (uint64_t)BACKOFF_MAX_MS * 1000;
    return refuse(l, FAULT_MISMATCH, why);
}

/* HELLO <run id> <node id> <wall-clock ms> <item size max>, from a peer
 * that proved the secret. */
static int hs_hello(struct link *l, const struct field *f, int nf)
{
    uint64_t prun, pnode, pms, isize;

    if (nf != 5 || !field_is(&f[0], "HELLO") || !field_u64(&f[1], &prun) ||
        !field_u64(&f[2], &pnode) || !field_u64(&f[3], &pms) ||
        !field_u64(&f[4], &isize) || pnode > 0xFF) {
        return refuse(l, FAULT_PROTOCOL, "a malformed HELLO line");
    }
    if (prun == run_id) {
        return refuse(l, FAULT_SELF, "this node dialled itself (-x)");
    }
    if (isize != (uint64_t)settings.item_size_max) {
        return item_size_mismatch(l, isize);
    }
    l->peer_run_id = prun;
    l->peer_node_id = (unsigned)pnode;
    note_skew(l, pms);
    link_established(l);
    return 1;
}

/* Handle one line before the stream starts (handshake, then RESUME);
 * 1, or -1 with l->fault and l->bad set: the caller closes the link. */
static int handshake_line(struct link *l, const char *line, size_t len)
{
    struct field f[8];
    int nf = split(line, len, f, 8);

    if (nf <= 0) {
        nf = 0;                 /* too many fields: no step accepts it */
    }
    switch (l->hs) {
    case HS_WAIT_PAIR:
        if (nf >= 2 && field_is(&f[0], "ERROR")) {
            return refuse(l, FAULT_MISMATCH, "the peer refused this "
                          "node's protocol version");
        }
        return hs_pair(l, f, nf);
    case HS_WAIT_AUTH:
        return hs_auth(l, f, nf);
    case HS_WAIT_HELLO:
        return hs_hello(l, f, nf);
    case HS_DONE:
    default:
        return handle_resume(l, line) ? 1 : refuse(l, FAULT_PROTOCOL,
                                                   "no RESUME line");
    }
}

/* Fresh stream state for link l becoming the active one, starting with
 * whatever its handshake had not sent yet.  Caller holds out_lock. */
static void stream_begin_locked(struct link *l, bool take_tx)
{
    outq.len = outq_off = 0;
    out_overflow = false;
    stream_blocked = false;
    stream_errno = 0;
    stream_walking = false;
    stream_catchup = false;
    stream_direct = false;
    lag_head = lag_tail = 0;
    lag_last_end = 0;
    if (!take_tx) {
        return;
    }
    if (l->tx_off < l->tx.len) {
        rbuf_add(&outq, l->tx.data + l->tx_off, l->tx.len - l->tx_off);
    }
    l->tx.len = l->tx_off = 0;
}

/* --- full copy ----------------------------------------------------------------
 * Sent bucket slice by bucket slice from the cron and after each flush of
 * tx, while tx holds less than SYNC_HIGH_WATER.  Live writes go into the
 * same stream meanwhile; last writer wins makes the order irrelevant.
 */
static void start_sync(struct link *l)
{
    uint64_t items = items_curr();
    char line[96];
    int n;

    link_set_state(l, REPL_SYNCING);
    /* In one critical section: bytes the handshake had not sent yet, then
     * SYNC with the stream offset from which live records follow it. */
    pthread_mutex_lock(&out_lock);
    stream_begin_locked(l, true);
    n = snprintf(line, sizeof(line), "SYNC %llu %llu %llu\r\n",
                 (unsigned long long)items, (unsigned long long)ring_end,
                 (unsigned long long)ring_records);
    l->peer_acked_items = ring_records;
    rbuf_add(&outq, line, (size_t)n);
    stream_fd = l->fd;
    stream_tls = l->tls;
    stream_walking = true;
    __atomic_store_n(&out_enabled, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&out_lock);
    l->walking = true;
    l->walk_started = false;
    l->walk_next = 0;
    l->walk_items = 0;
    l->walk_bytes = 0;
    l->walk_start_us = now_us();
    copy_sched_update();
    {
        /* A flush_all the peer may have missed while unlinked. */
        uint64_t cutoff;
        uint32_t at;
        items_flush_state(&cutoff, &at);
        if (cutoff != 0) {
            send_line(l, "f %llu %u\r\n", (unsigned long long)cutoff, at);
        }
    }
}

/* The peer still has our stream up to `from`: send it what followed,
 * from the backlog, then the live records.  Caller checked `from`. */
static void start_partial(struct link *l, uint64_t from, uint64_t records)
{
    char line[64];
    int n;

    /* PSYNC goes out first, from l->tx, then link_flush() sends the
     * backlog from `from` on, then the live stream. */
    n = snprintf(line, sizeof(line), "PSYNC %llu\r\n",
                 (unsigned long long)from);
    rbuf_add(&l->tx, line, (size_t)n);
    pthread_mutex_lock(&out_lock);
    stream_begin_locked(l, false);
    stream_catchup = true;
    stream_walking = true;          /* only this thread sends */
    psync_next = from;
    l->peer_acked_items = records;
    stream_fd = l->fd;
    stream_tls = l->tls;
    __atomic_store_n(&out_enabled, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&out_lock);
    l->walking = false;
    pthread_mutex_lock(&stats_lock);
    rs.partial_syncs++;
    pthread_mutex_unlock(&stats_lock);
    log_info("replication %s: partial resync, %llu bytes from the backlog",
             l->addr, (unsigned long long)(ring_end - from));
    link_set_state(l, l->peer_synced ? REPL_LINKED : REPL_SYNCING);
}

/* The peer told us how much of our stream it has. */
static bool handle_resume(struct link *l, const char *line)
{
    unsigned long long prun, poff, prec = 0;
    bool partial;

    if (sscanf(line, "RESUME %llu %llu %llu", &prun, &poff, &prec) < 2 ||
        l->resumed) {
        return false;
    }
    l->resumed = true;
    pthread_mutex_lock(&out_lock);
    partial = prun == run_id && ring_cap > 0 && poff <= ring_end &&
              poff >= ring_start_locked();
    pthread_mutex_unlock(&out_lock);
    if (partial) {
        start_partial(l, poff, prec);
    } else {
        start_sync(l);
    }
    return true;
}

static bool walk_cb(struct item *it, void *arg)
{
    struct link *l = arg;
    char hdr[REC_LINE_MAX];
    size_t n;

    if (item_is_dead(it)) {
        return true;
    }
    if (it->it_flags & ITEM_TOMBSTONE) {
        const char *mark;
        char *p = put_key(hdr, 'd', ITEM_key(it), it->nkey, false, &mark);
        *p++ = ' ';
        p = put_u64(p, it->version);
        memcpy(p, mark, strlen(mark));
        p += strlen(mark);
        *p++ = '\r';
        *p++ = '\n';
        n = (size_t)(p - hdr);
        if (!rbuf_add(&l->tx, hdr, n)) {
            return false;
        }
        l->walk_items++;
        l->walk_bytes += n;
        return true;
    }
    n = format_store_op(hdr, it, 's');
    if (!rbuf_add(&l->tx, hdr, n) ||
        !rbuf_add(&l->tx, ITEM_data(it), it->nbytes)) {
        return false;
    }
    l->walk_items++;
    l->walk_bytes += n + it->nbytes;
    return true;
}

static size_t stream_pending(void)
{
    size_t n;

    pthread_mutex_lock(&out_lock);
    n = outq.len - outq_off;
    pthread_mutex_unlock(&out_lock);
    return n;
}

/* Walk slices into l->tx, then queue them behind the live stream. */
static void walk_step(struct link *l)
{
    while (l->walking && stream_pending() < SYNC_HIGH_WATER) {
        uint64_t next = assoc_walk_buckets(l->walk_next, SYNC_SLICE, walk_cb,
                                           l);
        util_preempt_point(&yield_us);
        l->walk_started = true;
        if (l->tx.len > 0) {
            pthread_mutex_lock(&out_lock);
            if (outq_off == outq.len) {
                /* Nothing queued: hand the slice over without a copy. */
                struct rbuf t = outq;
                outq = l->tx;
                l->tx = t;
                outq_off = 0;
            } else if (!rbuf_add(&outq, l->tx.data, l->tx.len)) {
                out_overflow = true;    /* out of memory: resync */
            }
            /* Send it while it is still in the cache. */
            (void)push_locked(true);
            pthread_mutex_unlock(&out_lock);
            l->tx.len = 0;
        }
        if (next == 0) {
            uint64_t took = now_us() - l->walk_start_us;
            l->walking = false;
            pthread_mutex_lock(&out_lock);
            stream_walking = false;
            pthread_mutex_unlock(&out_lock);
            copy_sched_update();
            send_line(l, "SYNCED %llu\r\n",
                      (unsigned long long)l->walk_items);
            pthread_mutex_lock(&stats_lock);
            rs.full_syncs++;
            rs.last_sync_us = took;
            rs.last_sync_items = l->walk_items;
            rs.last_sync_bytes = l->walk_bytes;
            rs.items_sent += l->walk_items;
            pthread_mutex_unlock(&stats_lock);
            log_info("replication %s: full copy sent, %llu items in %llu ms",
                     l->addr, (unsigned long long)l->walk_items,
                     (unsigned long long)(took / 1000));
            if (l->peer_synced) {
                link_set_state(l, REPL_LINKED);
            }
            break;
        }
        l->walk_next = next;
        if (l->tx.cap > 4 * SYNC_HIGH_WATER) {
            rbuf_free(&l->tx);
        }
    }
}

static void signal_ready(const char *why)
{
    char b = 'r';

    if (ready_sent) {
        return;
    }
    ready_sent = true;
    log_info("replication: opening the client port (%s)", why);
    if (ready_fd >= 0 && write(ready_fd, &b, 1) != 1) {
        log_warn("replication: cannot signal the main thread");
    }
}

/* --- receiving ------------------------------------------------------------------ */


/* Only the replication thread writes these two; stats reads them racily
 * (64-bit aligned, never torn on the platforms we build for). */
static void count_applied(enum apply_result r)
{
    __atomic_store_n(&rs.items_received, rs.items_received + 1,
                     __ATOMIC_RELAXED);
    if (r == APPLY_STALE) {
        __atomic_store_n(&rs.items_stale, rs.items_stale + 1,
                         __ATOMIC_RELAXED);
    }
}

/*
 * Parse and apply one record at in_off.  Returns 1 when one was consumed,
 * 0 when more bytes are needed, -1 on a protocol error.  The buffer is
 * only read: a record whose data has not all arrived is parsed again.
 */
/* The hash of the key of the store record at p, if one is there whole and
 * its key is plain: a hint for prefetching, so any doubt is a no. */
static bool next_store_hash(const char *p, size_t avail, uint32_t *hv)
{
    const char *k, *end, *eol;

    if (avail < 4 || (p[0] != 'S' && p[0] != 's') || p[1] != ' ') {
        return false;
    }
    eol = memchr(p, '\n', avail > REC_LINE_MAX ? REC_LINE_MAX : avail);
    if (eol == NULL || eol[-1] == 'b' || eol[-1] == 'B' ||
        (eol[-1] == '\r' && (eol[-2] == 'b' || eol[-2] == 'B'))) {
        return false;           /* base64 key: not worth decoding twice */
    }
    k = p + 2;
    end = memchr(k, ' ', (size_t)(eol - k));
    if (end == NULL || end == k || end - k > KEY_MAX_LENGTH) {
        return false;
    }
    *hv = hash(k, (size_t)(end - k));
    return true;
}

/* A protocol error: -1 for apply_one, and why, for last_error. */
static int bad_record(struct link *l, const char *why)
{
    return refuse(l, FAULT_PROTOCOL, why);
}

/*
 * Versions are hybrid logical clocks (items.c): wall-clock ms << 20, then
 * a counter and the node id.  One far past every clock poisons the
 * receiver: folded into its clock, a version near 2^64 wraps it, and a
 * flush cutoff there kills every write made after it.  So a peer's
 * version may run ahead of our clock only by how far the peer's clock
 * leads ours (measured, at most LEAD_TRUST_MS), by where our own clock
 * already is, by a delayed flush's cutoff, plus FUTURE_MARGIN_MS.
 * l->vbound caches the bound: it is worked out again only when a record
 * goes past it, so the check costs one comparison per record.
 */
static uint64_t version_bound(const struct link *l)
{
    int64_t lead = l->skew_ms > 0 ? l->skew_ms : 0;
    uint64_t ms, bound, own, flushed;

    if (lead > LEAD_TRUST_MS) {
        lead = LEAD_TRUST_MS;
    }
    ms = util_now_ms() + (uint64_t)lead;
    own = item_next_version() >> VERSION_MS_SHIFT;
    flushed = __atomic_load_n(&flush_seen, __ATOMIC_RELAXED) >>
              VERSION_MS_SHIFT;
    ms = own > ms ? own : ms;
    ms = flushed > ms ? flushed : ms;
    ms += FUTURE_MARGIN_MS;
    bound = ms << VERSION_MS_SHIFT | ((1ULL << VERSION_MS_SHIFT) - 1);
    /* ms is under 2^44 unless the clock itself is: no wrap below 2^64. */
    return (bound >> VERSION_MS_SHIFT) == ms ? bound : UINT64_MAX - 1;
}

/* -1 (after logging and noting why) if version v of a record from l is
 * past what the clocks allow; else 0. */
static int check_version(struct link *l, uint64_t v, const char *what)
{
    if (v <= l->vbound) {
        return 0;
    }
    l->vbound = version_bound(l);
    if (v <= l->vbound) {
        return 0;
    }
    log_warn("replication %s: %s %llu is %llu s ahead of this node's "
             "clock, more than the peer's clock lead (%lld ms) allows",
             l->addr, what, (unsigned long long)v,
             (unsigned long long)(((v >> VERSION_MS_SHIFT) -
                                   util_now_ms()) / 1000),
             (long long)l->skew_ms);
    return refuse(l, FAULT_VERSION, "a version past the clocks");
}

/* A flush cutoff may also be a delayed flush_all's: at most the start of
 * the second after it takes effect (items.c, item_flush). */
static int check_flush(struct link *l, uint64_t cutoff, uint64_t at)
{
    if (cutoff <= ((at + 1) * 1000) << VERSION_MS_SHIFT) {
        note_flush_cutoff(cutoff);
        return 0;
    }
    return check_version(l, cutoff, "flush cutoff");
}

static int apply_one(struct link *l)
{
    const char *start = l->in.data + l->in_off;
    size_t avail = l->in.len - l->in_off;
    const char *eol = memchr(start, '\n', avail > REC_LINE_MAX ? REC_LINE_MAX
                                                               : avail);
    char keybuf[KEY_MAX_LENGTH + 1];
    struct field f[8];
    const char *key = NULL;
    const struct field *mark = NULL;
    size_t linelen, len, nkey = 0;
    int nf;
    bool binary = false, live;

    if (eol == NULL) {
        return avail >= REC_LINE_MAX ? -1 : 0;
    }
    linelen = (size_t)(eol - start) + 1;
    len = linelen - 1;
    if (len > 0 && start[len - 1] == '\r') {
        len--;
    }
    if (l->hs != HS_DONE || !l->resumed) {
        char line[REC_LINE_MAX + 1];
        memcpy(line, start, len);
        line[len] = '\0';
        l->in_off += linelen;
        return handshake_line(l, line, len);
    }
    nf = split(start, len, f, 8);
    if (nf <= 0) {
        return -1;
    }
    if (nf > 2 && f[0].len == 1 && strchr("SDTsd", f[0].p[0]) != NULL &&
        (field_is(&f[nf - 1], "b") || field_is(&f[nf - 1], "B"))) {
        mark = &f[--nf];
    }
    /* Upper case: a record of the peer's stream, counted in its offset;
     * lower case: the same record from a full copy, not counted. */
    live = f[0].len == 1 && strchr("SDTF", f[0].p[0]) != NULL;
    if (f[0].len == 1 && strchr("SDTsd", f[0].p[0]) != NULL) {
        if (nf < 2 || f[1].len == 0) {
            return -1;
        }
        binary = mark != NULL && mark->p[0] == 'B';
        if (mark == NULL) {
            if (f[1].len > KEY_MAX_LENGTH) {
                return -1;
            }
            key = f[1].p;
            nkey = f[1].len;
        } else {
            int n = util_b64_decode(f[1].p, f[1].len, keybuf, KEY_MAX_LENGTH);
            if (n <= 0) {
                return -1;
            }
            key = keybuf;
            nkey = (size_t)n;
        }
    }
    switch (f[0].len == 1 ? f[0].p[0] : 0) {
    case 'S': case 's': {
        uint64_t flags, exptime, version, vlen;
        uint32_t hv;
        if (f[0].len != 1 || nf != 6 || !field_u64(&f[2], &flags) ||
            !field_u64(&f[3], &exptime) || !field_u64(&f[4], &version) ||
            !field_u64(&f[5], &vlen) || flags > UINT32_MAX ||
            exptime > UINT32_MAX ||
            vlen > (uint64_t)settings.item_size_max) {
            /* No item can be that large (-I): a broken peer, which must
             * not make us wait for, or buffer, gigabytes. */
            return -1;
        }
        if (check_version(l, version, "version") != 0) {
            return -1;
        }
        if (avail < linelen + vlen + 2) {
            return 0;           /* the data is not all here yet */
        }
        if (start[linelen + vlen] != '\r' ||
            start[linelen + vlen + 1] != '\n') {
            return bad_record(l, "no \\r\\n after an S record's data");
        }
        hv = l->hint_ok && l->hint_off == l->in_off && mark == NULL
                 ? l->hint_hv : hash(key, nkey);
        l->hint_off = l->in_off + linelen + (size_t)vlen + 2;
        l->hint_ok = next_store_hash(start + linelen + vlen + 2,
                                     avail - (linelen + vlen + 2),
                                     &l->hint_hv);
        count_applied(item_apply_store(key, nkey, hv, (uint32_t)flags,
                                       (uint32_t)exptime, version,
                                       start + linelen, (size_t)vlen,
                                       binary,
                                       l->hint_ok ? &l->hint_hv : NULL));
        l->in_off += linelen + (size_t)vlen + 2;
        l->rx_items++;
        if (live) {
            peer_off_applied += linelen + (size_t)vlen + 2;
            peer_rec_applied++;
        }
        return 1;
    }
    case 'D': case 'd': {
        uint64_t version;
        if (f[0].len != 1 || nf != 3 || !field_u64(&f[2], &version)) {
            return -1;
        }
        if (check_version(l, version, "version") != 0) {
            return -1;
        }
        count_applied(item_apply_delete(key, nkey, version));
        l->rx_items++;
        break;
    }
    case 'T': {
        uint64_t exptime, version;
        if (f[0].len != 1 || nf != 4 || !field_u64(&f[2], &exptime) ||
            !field_u64(&f[3], &version) || exptime > UINT32_MAX ||
            check_version(l, version, "version") != 0) {
            return -1;
        }
        count_applied(item_apply_touch(key, nkey, (uint32_t)exptime,
                                       version));
        l->rx_items++;
        break;
    }
    case 'F': case 'f': {
        uint64_t cutoff, at;
        if (f[0].len != 1 || nf != 3 || !field_u64(&f[1], &cutoff) ||
            !field_u64(&f[2], &at) || at > UINT32_MAX ||
            check_flush(l, cutoff, at) != 0) {
            return -1;
        }
        item_apply_flush(cutoff, (uint32_t)at);
        count_applied(APPLY_DONE);
        l->rx_items++;
        break;
    }
    default:
        if (field_is(&f[0], "PING") && nf == 2) {
            uint64_t ms;
            /* Liveness (last_rx_us is already updated), and the peer's
             * wall clock for the skew. */
            if (field_u64(&f[1], &ms)) {
                note_skew(l, ms);
            }
        } else if (field_is(&f[0], "ACK") && (nf == 4 || nf == 5)) {
            uint64_t off, items, soff;
            if (!field_u64(&f[1], &off) || !field_u64(&f[2], &items) ||
                !field_u64(&f[3], &soff) ||
                (nf == 5 && !field_u64(&f[4], &items))) {
                return -1;
            }
            if (soff > __atomic_load_n(&acked_off, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&acked_off, soff, __ATOMIC_RELEASE);
                if (settings.repl_sync) {
                    workers_wake_repl();
                }
            }
            l->peer_acked = off;
            l->peer_acked_items = items;
            pthread_mutex_lock(&out_lock);
            while (lag_tail != lag_head && lag_ring[lag_tail].end <= items) {
                lag_tail = (lag_tail + 1) % LAG_SAMPLES;
            }
            pthread_mutex_unlock(&out_lock);
        } else if (field_is(&f[0], "SYNC") && (nf == 3 || nf == 4)) {
            uint64_t items, base, records = 0;
            if (!field_u64(&f[1], &items) || !field_u64(&f[2], &base) ||
                (nf == 4 && !field_u64(&f[3], &records))) {
                return -1;
            }
            peer_rec_applied = records;
            /* The offset only counts once the copy is complete: a copy
             * cut short must be redone in full, not resumed. */
            peer_run_applied = 0;
            peer_off_applied = base;
            log_info("replication %s: receiving a full copy (%llu items)",
                     l->addr, (unsigned long long)items);
            l->copy_in = true;
            copy_sched_update();
            /* Size the hash table for the copy, but never beyond what
             * -m can hold (an item takes at least 64 bytes). */
            assoc_reserve(assoc_count() +
                          (items < settings.maxbytes / 64 ? items :
                           settings.maxbytes / 64));
        } else if (field_is(&f[0], "PSYNC") && nf == 2) {
            uint64_t from;
            if (!field_u64(&f[1], &from) || peer_run_applied !=
                    l->peer_run_id || from != peer_off_applied) {
                return -1;
            }
            log_info("replication %s: catching up from the peer's backlog",
                     l->addr);
            l->peer_synced = true;
            signal_ready("caught up with the peer");
            if (!l->walking) {
                link_set_state(l, REPL_LINKED);
            }
        } else if (field_is(&f[0], "SYNCED")) {
            if (!l->copy_in) {
                return bad_record(l, "SYNCED without SYNC");
            }
            l->copy_in = false;
            copy_sched_update();
            peer_run_applied = l->peer_run_id;
            l->peer_synced = true;
            signal_ready("first sync with the peer done");
            if (!l->walking) {
                link_set_state(l, REPL_LINKED);
            }
        } else {
            return -1;
        }
        break;
    }
    if (live) {
        peer_off_applied += linelen;
        peer_rec_applied++;
    }
    l->in_off += linelen;
    return 1;
}

/* Tell the peer what we applied: bytes and records on this link, and
 * its stream offset and record count. */
static void send_ack(struct link *l)
{
    send_line(l, "ACK %llu %llu %llu %llu\r\n",
              (unsigned long long)l->rx_offset,
              (unsigned long long)l->rx_items,
              (unsigned long long)peer_off_applied,
              (unsigned long long)peer_rec_applied);
    l->acked_rx = l->rx_items;
}

/* Close a link whose peer's bytes were refused (l->fault, l->bad):
 * count it, log it with the peer's address, say why in last_error. */
static void peer_refused(struct link *l)
{
    static const char *const kinds[] = {
        "protocol error", "record refused", "authentication failed",
        "peer refused", "link refused"
    };
    char why[160];

    pthread_mutex_lock(&stats_lock);
    switch (l->fault) {
    case FAULT_VERSION:
        rs.bad_versions++;
        break;
    case FAULT_AUTH:
        rs.auth_failures++;
        break;
    case FAULT_MISMATCH:
        rs.mismatches++;
        break;
    case FAULT_SELF:
        break;
    case FAULT_PROTOCOL:
    default:
        rs.protocol_errors++;
        break;
    }
    pthread_mutex_unlock(&stats_lock);
    snprintf(why, sizeof(why), "%s (%s)", kinds[l->fault],
             l->bad != NULL ? l->bad : "a line that does not parse");
    log_warn("replication %s: %s; closing the link", l->addr, why);
    if (l->fault == FAULT_MISMATCH && l->tx_off < l->tx.len) {
        /* Our HELLO, so that the peer can say why too. */
        (void)io_send(l->fd, l->tls, l->tx.data + l->tx_off,
                      l->tx.len - l->tx_off);
    }
    link_close(l, why);
}

static void link_read(struct link *l)
{
    for (;;) {
        ssize_t n;
        if (!rbuf_reserve(&l->in, READ_CHUNK)) {
            link_close(l, "out of memory");
            return;
        }
        if (l->tls != NULL) {
            enum repl_tls_want want;
            n = repl_tls_read(l->tls, l->in.data + l->in.len, READ_CHUNK,
                              &want);
            l->read_wants_write = n < 0 && want == TLS_WANT_WRITE;
        } else {
            n = read(l->fd, l->in.data + l->in.len, READ_CHUNK);
        }
        if (n > 0) {
            l->in.len += (size_t)n;
            l->last_rx_us = now_us();
            pthread_mutex_lock(&stats_lock);
            rs.bytes_received += (uint64_t)n;
            pthread_mutex_unlock(&stats_lock);
            /* A short plain read drained the socket; TLS may still hold
             * decrypted bytes that no event will announce. */
            if (n < READ_CHUNK && l->tls == NULL) {
                break;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        link_close(l, io_failure(n, errno));
        return;
    }
    applying = true;
    for (unsigned done = 1;; done++) {
        size_t before = l->in_off;
        int r = apply_one(l);
        if (done % APPLY_YIELD == 0) {
            util_preempt_point(&yield_us);
        }
        if (l->fd < 0) {
            break;
        }
        if (r < 0) {
            applying = false;
            peer_refused(l);
            return;
        }
        if (r == 0) {
            break;
        }
        if (l->state >= REPL_SYNCING) {
            l->rx_offset += l->in_off - before;
        }
    }
    applying = false;
    if (l->fd < 0) {
        return;
    }
    if (settings.repl_sync && l->rx_items != l->acked_rx) {
        /* Synchronous writes wait for this: acknowledge at once. */
        send_ack(l);
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

/* --- events ------------------------------------------------------------------- */

/* Move stream bytes to the active link and send; then continue a walk. */
static void pump(struct link *l, bool writable)
{
    if (l->fd < 0) {
        return;
    }
    if (l->walking) {
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
    enum repl_tls_want want;
    const char *why = NULL;
    int rc = repl_tls_handshake(l->tls, &want, &why);

    if (rc == -2) {
        log_info("replication %s: %s", l->addr, why);
        link_close(l, why);
        return false;
    }
    if (rc < 0) {
        pthread_mutex_lock(&stats_lock);
        rs.tls_failures++;
        pthread_mutex_unlock(&stats_lock);
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
    repl_tls_describe(l->tls, l->tls_desc, sizeof(l->tls_desc));
    if (!repl_tls_channel_id(l->tls, l->channel)) {
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
    if (active != NULL) {
        pump(active, false);    /* handles errors and overflow */
    } else {
        pthread_mutex_lock(&out_lock);
        out_woken = false;
        outq.len = outq_off = 0;
        pthread_mutex_unlock(&out_lock);
    }
}

static void peer_name(const struct sockaddr *sa, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(out, n, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(out, n, "[%s]:%u", host, port);
    } else {
        snprintf(out, n, "?");
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
    peer_name((struct sockaddr *)&ss, addr, sizeof(addr));
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
    struct addrinfo hints, *ai = NULL, *p;
    struct link *l;
    char addr[300];
    int i, fd = -1;

    for (i = 0; i < MAX_LINKS; i++) {
        if (links[i].fd >= 0 && (links[i].dialled ||
                                 links[i].state >= REPL_SYNCING)) {
            return;
        }
    }
    l = link_slot(true);
    if (l == NULL) {
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(peer_host, peer_port, &hints, &ai) != 0) {
        pthread_mutex_lock(&stats_lock);
        snprintf(rs.last_error, sizeof(rs.last_error),
                 "cannot resolve %.100s", peer_host);
        pthread_mutex_unlock(&stats_lock);
        return;
    }
    for (p = ai; p != NULL; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK,
                    p->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, p->ai_addr, p->ai_addrlen) == 0 ||
            errno == EINPROGRESS) {
            break;
        }
        /* Refused or unreachable at once (no route, interface down). */
        pthread_mutex_lock(&stats_lock);
        snprintf(rs.last_error, sizeof(rs.last_error), "%.60s:%.8s: %.50s",
                 peer_host, peer_port, strerror(errno));
        pthread_mutex_unlock(&stats_lock);
        close(fd);
        fd = -1;
    }
    if (fd >= 0) {
        peer_name(p->ai_addr, addr, sizeof(addr));
    }
    freeaddrinfo(ai);
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
        send_ack(l);
    }
    if (now - l->last_ping_us >= 1000000 && l->state >= REPL_SYNCING) {
        send_line(l, "PING %llu\r\n", (unsigned long long)util_now_ms());
        l->last_ping_us = now;
    }
}

/* Every CRON_MS: timeouts, heartbeats, acks, redials, the start gate. */
void repl_watchdog(void)
{
    struct sched_param sp = { .sched_priority = 0 };
    uint64_t last = __atomic_load_n(&cron_last_us, __ATOMIC_RELAXED);
    uint64_t now = now_us();

    if (!__atomic_load_n(&copy_idle, __ATOMIC_RELAXED) || last == 0 ||
        now - last < (uint64_t)COPY_STARVED_MS * 1000) {
        return;
    }
    __atomic_store_n(&copy_starved, true, __ATOMIC_RELAXED);
    if (sched_setscheduler(__atomic_load_n(&repl_tid, __ATOMIC_RELAXED),
                           SCHED_OTHER, &sp) != 0) {
        log_warn("replication: cannot change the thread's scheduling "
                 "class: %s", strerror(errno));
        return;
    }
    __atomic_store_n(&copy_idle, false, __ATOMIC_RELAXED);
    __atomic_add_fetch(&copy_starved_count, 1, __ATOMIC_RELAXED);
    log_info("replication: the copy is starved of CPU (timer %llu ms "
             "late); it goes on at normal priority",
             (unsigned long long)((now - last) / 1000));
}

/* The handshake deadline passed: whatever it sent, the link goes. */
static void handshake_timeout(struct link *l)
{
    pthread_mutex_lock(&stats_lock);
    rs.hs_timeouts++;
    pthread_mutex_unlock(&stats_lock);
    log_info("replication %s: handshake not done within %d s; closing",
             l->addr, settings.repl_timeout);
    link_close(l, "handshake timeout");
}

static void repl_cron(evutil_socket_t fd, short which, void *arg)
{
    static uint64_t last_cron_us;
    uint64_t now = now_us();
    uint64_t gap_ms = last_cron_us != 0 ? (now - last_cron_us) / 1000 : 0;
    bool late = gap_ms > COPY_STARVED_MS;
    int i;

    (void)fd;
    (void)which;
    (void)arg;
    last_cron_us = now;
    __atomic_store_n(&cron_last_us, now, __ATOMIC_RELAXED);
    for (i = 0; i < MAX_LINKS; i++) {
        struct link *l = &links[i];
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
    if (active == NULL && now >= next_dial_us) {
        dial();
        next_dial_us = now + (uint64_t)backoff_ms * 1000;
        backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                     : backoff_ms * 2;
    }
    if (!ready_sent && now - start_us >
            (uint64_t)settings.repl_initial_sync_timeout * 1000000) {
        log_warn("replication: no sync with %s:%s within %d s; serving "
                 "what this node has", peer_host, peer_port,
                 settings.repl_initial_sync_timeout);
        signal_ready("initial sync timed out");
    }
    now = now_us();     /* pump() above may have noted newer samples */
    pthread_mutex_lock(&out_lock);
    lag_ms = lag_tail == lag_head || lag_ring[lag_tail].us > now
             ? 0 : (now - lag_ring[lag_tail].us) / 1000;
    pthread_mutex_unlock(&out_lock);
}

static void *repl_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "mc-repl");
    __atomic_store_n(&repl_tid, gettid(), __ATOMIC_RELAXED);
    event_base_dispatch(rbase);
    return NULL;
}

/* --- configuration and start -------------------------------------------------- */

/* Split -x "host[:port]" / "[v6]:port" into peer_host and peer_port. */
static int parse_peer(const char *spec)
{
    const char *colon;

    snprintf(peer_port, sizeof(peer_port), "11212");
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (end == NULL || (size_t)(end - spec - 1) >= sizeof(peer_host)) {
            return -1;
        }
        memcpy(peer_host, spec + 1, (size_t)(end - spec - 1));
        peer_host[end - spec - 1] = '\0';
        if (end[1] == ':') {
            snprintf(peer_port, sizeof(peer_port), "%s", end + 2);
        }
        return 0;
    }
    colon = strrchr(spec, ':');
    if (colon != NULL && strchr(spec, ':') == colon) {
        if ((size_t)(colon - spec) >= sizeof(peer_host)) {
            return -1;
        }
        memcpy(peer_host, spec, (size_t)(colon - spec));
        peer_host[colon - spec] = '\0';
        snprintf(peer_port, sizeof(peer_port), "%s", colon + 1);
    } else {
        snprintf(peer_host, sizeof(peer_host), "%s", spec);
    }
    return peer_host[0] ? 0 : -1;
}

static int read_secret(const char *path)
{
    char line[1024];
    struct stat st;
    FILE *f = fopen(path, "r");
    size_t n;

#ifndef ENABLE_TLS
    fprintf(stderr, "repl_secret_file needs OpenSSL; this build has none\n");
    return -1;
#endif
    if (f == NULL) {
        fprintf(stderr, "cannot read repl_secret_file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0077)) {
        log_warn("repl_secret_file %s is readable by other users", path);
    }
    if (fgets(line, sizeof(line), f) == NULL) {
        fclose(f);
        fprintf(stderr, "repl_secret_file %s is empty\n", path);
        return -1;
    }
    fclose(f);
    n = strcspn(line, "\r\n");
    if (n < 16) {
        fprintf(stderr, "repl_secret_file %s: the secret must have at least "
                        "16 characters\n", path);
        return -1;
    }
    secret = malloc(n);
    if (secret == NULL) {
        return -1;
    }
    memcpy(secret, line, n);
    secret_len = n;
    return 0;
}

/* -x off loopback needs what a listener off loopback needs (see
 * open_listener): a secret, or TLS that verifies the peer; else this node
 * would dial out and apply whatever answers there.  A name is resolved
 * now: one that does not resolve, or that has any address off loopback,
 * counts as off loopback. */
static int check_peer_addr(void)
{
    struct addrinfo hints, *ai = NULL, *p;
    bool loopback;
    int rc;

    if (secret != NULL || repl_tls_verifies_peer()) {
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(peer_host, peer_port, &hints, &ai);
    loopback = rc == 0;
    for (p = ai; p != NULL; p = p->ai_next) {
        if (!util_is_loopback(p->ai_addr)) {
            loopback = false;
        }
    }
    if (ai != NULL) {
        freeaddrinfo(ai);
    }
    if (loopback) {
        return 0;
    }
    fprintf(stderr, "the peer %s%s%s:%s (-x) is not on loopback%s: give "
            "-o repl_secret_file=PATH (the same secret on both nodes) or "
            "repl_tls=1 with repl_tls_ca=PATH, or a peer on 127.0.0.1\n",
            strchr(peer_host, ':') ? "[" : "", peer_host,
            strchr(peer_host, ':') ? "]" : "", peer_port,
            rc != 0 ? " (or does not resolve)" : "");
    return -1;
}

int repl_configure(void)
{
    if (settings.repl_peer == NULL) {
        return 0;
    }
    if (parse_peer(settings.repl_peer) != 0) {
        fprintf(stderr, "bad -x peer address: %s\n", settings.repl_peer);
        return -1;
    }
    if (settings.repl_secret_file != NULL &&
        read_secret(settings.repl_secret_file) != 0) {
        return -1;
    }
    if (settings.repl_tcp_congestion != NULL && wanted_congestion() != NULL) {
        /* Asked for by name: a typo or a missing module is an error now,
         * not a quiet fallback on every link. */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        bool ok;
        int err;

        if (fd < 0) {
            fd = socket(AF_INET6, SOCK_STREAM, 0);    /* IPv6-only host */
        }
        ok = fd >= 0 && set_congestion(fd, settings.repl_tcp_congestion);
        err = errno;
        if (fd >= 0) {
            close(fd);
        }
        if (!ok) {
            fprintf(stderr, "repl_tcp_congestion: cannot use \"%s\" (%s); "
                    "see /proc/sys/net/ipv4/tcp_allowed_congestion_control, "
                    "or give \"system\"\n", settings.repl_tcp_congestion,
                    strerror(err));
            return -1;
        }
    }
    if (repl_tls_configure() != 0) {
        return -1;
    }
    return check_peer_addr();
}


/* The listen address: repl_listen, else the first -l address, else all. */
static int open_listener(void)
{
    struct addrinfo hints, *ai = NULL;
    char host[256] = "", port[16];
    const char *spec = settings.repl_listen ? settings.repl_listen
                                            : settings.inter;
    int one = 1, fd, rc;

    if (spec != NULL) {
        size_t n = strcspn(spec, ",; ");
        if (n >= sizeof(host)) {
            return -1;
        }
        memcpy(host, spec, n);
        host[n] = '\0';
        if (host[0] == '[') {
            memmove(host, host + 1, strlen(host));
            host[strcspn(host, "]")] = '\0';
        } else if (strchr(host, ':') == strrchr(host, ':') &&
                   strchr(host, ':') != NULL) {
            *strchr(host, ':') = '\0';      /* drop a -l host:port port */
        }
    }
    snprintf(port, sizeof(port), "%d", settings.repl_port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "replication listener %s: %s\n", host,
                gai_strerror(rc));
        return -1;
    }
    if (!util_is_loopback(ai->ai_addr) && secret == NULL &&
        !repl_tls_verifies_peer()) {
        fprintf(stderr, "the replication listener on %s is not on loopback: "
                "give -o repl_secret_file=PATH (the same secret on both "
                "nodes) or repl_tls=1 with repl_tls_ca=PATH, or "
                "-o repl_listen=127.0.0.1\n",
                host[0] ? host : "all addresses");
        freeaddrinfo(ai);
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK,
                ai->ai_protocol);
    if (fd < 0) {
        freeaddrinfo(ai);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        fprintf(stderr, "replication listener on port %d: %s\n",
                settings.repl_port, strerror(errno));
        close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    listen_fd = fd;
    return 0;
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
        links[i].fd = -1;
    }
    if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
        r = now_us() ^ ((uint64_t)getpid() << 32);
    }
    run_id = r | 1;
    ring_cap = settings.repl_backlog_size;
    ring = ring_cap ? malloc(ring_cap) : NULL;
    if (ring_cap && ring == NULL) {
        fprintf(stderr, "cannot allocate the %zu-byte replication backlog\n",
                ring_cap);
        return -1;
    }
    node_id = (unsigned)(r >> 8) & 0xFF;
    items_set_node_id(node_id);
    if (open_listener() != 0 || pipe2(fds, O_NONBLOCK) != 0) {
        return -1;
    }
    wake_rd = fds[0];
    wake_wr = fds[1];
    rbase = event_base_new();
    if (rbase == NULL) {
        return -1;
    }
    listen_ev = event_new(rbase, listen_fd, EV_READ | EV_PERSIST, accept_cb,
                          NULL);
    wake_ev = event_new(rbase, wake_rd, EV_READ | EV_PERSIST, wake_cb, NULL);
    cron_ev = event_new(rbase, -1, EV_PERSIST, repl_cron, NULL);
    if (listen_ev == NULL || wake_ev == NULL || cron_ev == NULL ||
        event_add(listen_ev, NULL) != 0 || event_add(wake_ev, NULL) != 0 ||
        event_add(cron_ev, &tick) != 0) {
        return -1;
    }
    start_us = now_us();
    backoff_ms = BACKOFF_MIN_MS;
    next_dial_us = 0;
    set_shown(REPL_CONNECTING, NULL);
    items_set_mutation_hook(repl_feed);
    items_set_tombstone_ttl((uint32_t)settings.repl_tombstone_ttl);
    if (pthread_create(&rtid, NULL, repl_main, NULL) != 0) {
        return -1;
    }
    running = true;
    log_info("replication: run id %016llx, node id %u, listening on port "
             "%d, peer %s:%s", (unsigned long long)run_id, node_id,
             settings.repl_port, peer_host, peer_port);
    return 0;
}

void repl_stop(void)
{
    if (!running) {
        return;
    }
    event_base_loopbreak(rbase);
    pthread_join(rtid, NULL);
    running = false;
}

/* --- stats replication ----------------------------------------------------------- */

void repl_stats(struct strbuf *sb)
{
    struct repl_stats_s c;
    enum repl_state st;
    uint64_t since, lagms, queued;
    char peer[64];
    struct link *l = active;

    if (settings.repl_peer == NULL) {
        sb_stat(sb, "role", "none");
        return;
    }
    pthread_mutex_lock(&stats_lock);
    c = rs;
    st = shown_state;
    since = shown_since_us;
    lagms = lag_ms;
    snprintf(peer, sizeof(peer), "%s", shown_peer);
    pthread_mutex_unlock(&stats_lock);
    pthread_mutex_lock(&out_lock);
    queued = out_items;
    pthread_mutex_unlock(&out_lock);
    sb_stat(sb, "role", "pair");
    sb_stat(sb, "peer", "%s:%s", peer_host, peer_port);
    sb_stat(sb, "peer_addr", "%s", peer[0] ? peer : "none");
    sb_stat(sb, "run_id", "%016llx", (unsigned long long)run_id);
    sb_stat(sb, "node_id", "%u", node_id);
    sb_stat(sb, "link_state", "%s", repl_state_name(st));
    sb_stat(sb, "link_state_secs", "%llu",
            (unsigned long long)((now_us() - since) / 1000000));
    sb_stat(sb, "initial_sync_done", "%s", ready_sent ? "yes" : "no");
    {
        uint64_t streamed;
        pthread_mutex_lock(&out_lock);
        streamed = stream_sent_total;
        pthread_mutex_unlock(&out_lock);
        sb_stat(sb, "bytes_sent", "%llu",
                (unsigned long long)(c.bytes_sent + streamed));
    }
    sb_stat(sb, "bytes_received", "%llu",
            (unsigned long long)c.bytes_received);
    sb_stat(sb, "items_queued", "%llu", (unsigned long long)queued);
    sb_stat(sb, "items_received", "%llu",
            (unsigned long long)c.items_received);
    sb_stat(sb, "items_stale", "%llu", (unsigned long long)c.items_stale);
    {
        uint64_t unsent, records;
        pthread_mutex_lock(&out_lock);
        unsent = outq.len - outq_off +
                 (stream_direct ? ring_end - ring_sent : 0);
        records = ring_records;
        pthread_mutex_unlock(&out_lock);
        sb_stat(sb, "buffer_bytes", "%llu", (unsigned long long)unsent);
        sb_stat(sb, "lag_items", "%llu",
                (unsigned long long)(l != NULL && records >
                                     l->peer_acked_items
                                     ? records - l->peer_acked_items : 0));
    }
    sb_stat(sb, "lag_ms", "%llu", (unsigned long long)lagms);
    sb_stat(sb, "full_syncs", "%llu", (unsigned long long)c.full_syncs);
    sb_stat(sb, "partial_syncs", "%llu",
            (unsigned long long)c.partial_syncs);
    {
        uint64_t end, start;
        pthread_mutex_lock(&out_lock);
        end = ring_end;
        start = ring_start_locked();
        pthread_mutex_unlock(&out_lock);
        sb_stat(sb, "backlog_size", "%zu", ring_cap);
        sb_stat(sb, "backlog_first_offset", "%llu",
                (unsigned long long)start);
        sb_stat(sb, "backlog_end_offset", "%llu", (unsigned long long)end);
        sb_stat(sb, "peer_offset_applied", "%llu",
                (unsigned long long)peer_off_applied);
    }
    sb_stat(sb, "last_sync_ms", "%llu",
            (unsigned long long)(c.last_sync_us / 1000));
    sb_stat(sb, "last_sync_items", "%llu",
            (unsigned long long)c.last_sync_items);
    sb_stat(sb, "last_sync_bytes", "%llu",
            (unsigned long long)c.last_sync_bytes);
    sb_stat(sb, "sync_in_progress", "%d",
            l != NULL && l->walking ? 1 : 0);
    sb_stat(sb, "sync_items_sent", "%llu",
            (unsigned long long)(l != NULL ? l->walk_items : 0));
    sb_stat(sb, "copy_priority", "%s",
            __atomic_load_n(&copy_idle, __ATOMIC_RELAXED) ? "idle"
                                                         : "normal");
    sb_stat(sb, "copy_starved", "%llu", (unsigned long long)
            __atomic_load_n(&copy_starved_count, __ATOMIC_RELAXED));
    sb_stat(sb, "links", "%llu", (unsigned long long)c.links);
    sb_stat(sb, "reconnects", "%llu", (unsigned long long)c.reconnects);
    sb_stat(sb, "duplicate_links", "%llu", (unsigned long long)c.dup_links);
    sb_stat(sb, "buffer_overflows", "%llu", (unsigned long long)c.overflows);
    sb_stat(sb, "auth_failures", "%llu",
            (unsigned long long)c.auth_failures);
    sb_stat(sb, "protocol_errors", "%llu",
            (unsigned long long)c.protocol_errors);
    sb_stat(sb, "bad_versions", "%llu", (unsigned long long)c.bad_versions);
    sb_stat(sb, "handshake_timeouts", "%llu",
            (unsigned long long)c.hs_timeouts);
    sb_stat(sb, "handshake_evictions", "%llu",
            (unsigned long long)c.hs_evictions);
    sb_stat(sb, "peer_mismatches", "%llu", (unsigned long long)c.mismatches);
    sb_stat(sb, "tls", "%s", repl_tls_enabled()
            ? (repl_tls_verifies_peer() ? "verify" : "on") : "off");
    sb_stat(sb, "tls_failures", "%llu", (unsigned long long)c.tls_failures);
    sb_stat(sb, "link_tls", "%s",
            l != NULL && l->tls != NULL && l->tls_desc[0] ? l->tls_desc
                                                          : "none");
    sb_stat(sb, "link_congestion", "%s",
            l != NULL && l->congestion[0] ? l->congestion : "none");
    sb_stat(sb, "tombstones", "%llu", (unsigned long long)items_tombstones());
    sb_stat(sb, "sync_mode", "%s", settings.repl_sync ? "on" : "off");
    sb_stat(sb, "sync_writes", "%llu",
            (unsigned long long)__atomic_load_n(&sync_waits,
                                                __ATOMIC_RELAXED));
    sb_stat(sb, "sync_timeouts", "%llu",
            (unsigned long long)__atomic_load_n(&sync_timeouts,
                                                __ATOMIC_RELAXED));
    sb_stat(sb, "sync_unlinked", "%llu",
            (unsigned long long)__atomic_load_n(&sync_unlinked,
                                                __ATOMIC_RELAXED));
    sb_stat(sb, "acked_offset", "%llu",
            (unsigned long long)repl_acked_off());
    sb_stat(sb, "clock_skew_ms", "%lld",
            (long long)(l != NULL ? l->skew_ms : 0));
    sb_stat(sb, "last_error", "%s", c.last_error[0] ? c.last_error : "none");
}

/* --- synchronous writes -------------------------------------------------- */

uint64_t repl_acked_off(void)
{
    return __atomic_load_n(&acked_off, __ATOMIC_ACQUIRE);
}

bool repl_linked(void)
{
    return __atomic_load_n(&out_enabled, __ATOMIC_ACQUIRE);
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
