/*
 * repl_stream.c - the outbound stream: records the mutation hook appends
 * (workers, any thread), the backlog ring they also go to, and sending
 * both to the active link's socket, by workers at the end of their event
 * or by the replication thread.  Everything here is under out_lock.  It
 * knows one socket and TLS session, never a link (replication.c).
 */
#include "repl_stream.h"
#include "item_chunk.h"
#include "repl_apply.h"
#include "repl_codec.h"
#include "repl_fsm.h"
#include "repl_ring.h"
#include "repl_net.h"
#include "replication.h"
#include "log.h"
#include "settings.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Outbound stream, filled by workers (the hook) under out_lock. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rbuf outq;
/* The mode (repl_fsm.h, doc/replication.txt "Stream modes"): written
 * under out_lock by mode_set() only, atomically, because the replication
 * thread reads whether it is off without the lock. */
static enum stream_mode mode;
static bool out_woken;          /* a wake byte is pending */
static bool out_overflow;       /* outq grew past repl_buffer_size */
static uint64_t out_items;      /* records queued since start */
static bool feeding;            /* the hook is on (repl_start) */
static int wake_fd_wr = -1;     /* wakes the replication thread */
/* The active link's socket as seen by workers: they send outq themselves
 * at the end of each event (repl_worker_push), so a replicated write
 * costs no thread switch in the common case. */
static int stream_fd = -1;      /* -1: no active link */
/* With TLS only the replication thread touches the session: workers then
 * wake it instead of sending. */
static struct tls *stream_tls;
/* STREAM_COPY and STREAM_CATCHUP: only the replication thread sends, so
 * that workers never spend a client's time pushing megabytes of copy
 * into the socket.  In STREAM_CATCHUP live records go only to the
 * backlog, and the thread sends ring[psync_next, ring.end) until it
 * reaches the end, in chunks, so that no lock is held for long. */
static uint64_t psync_next;
static size_t outq_off;         /* bytes of outq already sent */
/* STREAM_DIRECT: in the steady state (no copy, no catch-up, no TLS) records go
 * only to the backlog and are sent from there, from ring_sent on; outq
 * then holds only control lines (ACK, PING, PONG), each run of them sent
 * when ring_sent reaches the record boundary at which it was queued, so
 * that a line never overtakes a record fed before it (a PONG tells the
 * peer it has everything before it).  This saves a copy of every record.
 * Used only when the backlog is at least repl_buffer_size, so that bytes
 * not yet sent cannot be overwritten before the overflow rule drops the
 * link. */
static uint64_t ring_sent;      /* backlog offset sent up to (direct) */
/* Runs of control lines: outq[.., end) goes after the ring up to at.
 * When all CTRL_RUNS are taken a new line joins the last run, which then
 * waits for the records fed so far: a line may go later, never
 * earlier. */
#define CTRL_RUNS 32
static struct ctrl_run {
    uint64_t at;                /* ring offset the run follows */
    size_t end;                 /* outq offset the run ends at */
} ctrl_run[CTRL_RUNS];
static unsigned ctrl_runs;      /* runs not yet sent; [0] is the next */
/* Not modes: in any mode the socket may fill or fail, or outq overflow. */
static bool stream_blocked;     /* socket full: the thread waits EV_WRITE */
static int stream_errno;        /* a send failed: the thread closes */
static uint64_t stream_sent_total;  /* stream bytes sent, all links */

__thread bool repl_dirty;
__thread uint64_t repl_fed_off;
__thread bool repl_applying;
static uint64_t acked_off;      /* atomic: our stream offset the peer applied */

/* The ends of our last NAK_KEPT records the peer could not store (NAK),
 * under out_lock: a client's repl_wait, or its synchronous write, whose
 * record is one of them is not told OK.  Failures are rare (a peer out
 * of memory under -M); one older than the last NAK_KEPT is forgotten. */
#define NAK_KEPT 256
static uint64_t nak_off[NAK_KEPT];
static unsigned nak_next;

/* Backlog: the last repl_backlog_size bytes of this node's record stream
 * (S/D/T/F records only), by stream offset.  A peer that comes back with
 * an offset still in here gets only what it missed. */
static struct repl_ring ring;   /* repl_backlog_size bytes (repl_ring.h) */
static uint64_t ring_records;   /* records fed since start (lag_items) */

/* Lag: send time of each batch, by the records count at its end. */
static struct {
    uint64_t end;               /* ring_records after the batch */
    uint64_t us;                /* when it was sent */
} lag_ring[LAG_SAMPLES];
static unsigned lag_head, lag_tail;
static uint64_t lag_last_end;   /* records count of the newest sample */
/* Records the peer is known to have applied (its last ACK, or what it
 * said it had at RESUME or SYNC): a send that carries no newer record
 * (a heartbeat) starts no batch, else it would age for ever. */
static uint64_t lag_acked;

int stream_init(size_t backlog, int wake_fd)
{
    wake_fd_wr = wake_fd;
    return ring_init(&ring, backlog);
}

void stream_hook_on(void)
{
    feeding = true;
}

/* Wake the replication thread if the buffer just became non-empty.
 * Caller holds out_lock. */
static void wake_locked(void)
{
    if (!out_woken) {
        char b = 'w';
        out_woken = true;
        if (write(wake_fd_wr, &b, 1) != 1) {
            /* Full pipe: a wake-up is pending anyway. */
        }
    }
}

/* The only place the mode changes: checked (repl_fsm.c), logged at -vv.
 * Caller holds out_lock. */
static void mode_set(enum stream_mode to)
{
    if (mode == to) {
        return;
    }
    if (!stream_mode_legal(mode, to)) {
        log_warn("replication: BUG: stream %s -> %s is not a legal "
                 "transition", stream_mode_name(mode), stream_mode_name(to));
#ifdef REPL_FSM_STRICT
        abort();
#endif
    }
    log_debug("replication: stream %s -> %s", stream_mode_name(mode),
              stream_mode_name(to));
    __atomic_store_n(&mode, to, __ATOMIC_RELEASE);
}

/* Note when the records up to `end` (ring_records) were first sent, so
 * that lag_ms can say how long the peer has not acknowledged them. */
static void lag_note_locked(uint64_t end)
{
    unsigned next = (lag_head + 1) % LAG_SAMPLES;

    if (end <= lag_last_end || end <= lag_acked) {
        return;                 /* no record the peer lacks, or noted */
    }
    lag_last_end = end;
    if (next == lag_tail) {
        /* Full: extend the newest batch instead of dropping the oldest,
         * which would hide the age of what the peer has not applied. */
        lag_ring[(lag_head + LAG_SAMPLES - 1) % LAG_SAMPLES].end = end;
        return;
    }
    lag_ring[lag_head].end = end;
    lag_ring[lag_head].us = util_mono_us();
    lag_head = next;
}

/* --- the hook ---------------------------------------------------------------
 * Workers, with the key's stripe lock held: one record into the ring,
 * and (unless it is sent from the ring) into outq.  The worker sends it
 * at the end of its event (repl_worker_push).
 */
static size_t format_record(char *hdr, enum mutation_op op,
                            const struct item *it, uint64_t version,
                            uint32_t exptime)
{
    bool binary = (it != NULL && (it->it_flags & ITEM_KEY_BINARY) != 0);

    switch (op) {
    case MUT_STORE:
        return repl_fmt_store(hdr, it, 'S');
    case MUT_DELETE:
        return repl_fmt_delete(hdr, 'D', ITEM_key(it), it->nkey, binary,
                               version);
    case MUT_TOUCH:
        return repl_fmt_touch(hdr, ITEM_key(it), it->nkey, binary, exptime,
                              version);
    case MUT_META:
        return repl_fmt_marks(hdr, ITEM_key(it), it->nkey, binary, version,
                              repl_marks_of(it));
    case MUT_FLUSH:
    default:
        repl_note_flush_cutoff(version);
        /* An immediate flush (item_flush: at is this second) goes out
         * with at 0, "now": the peer's coarse clock may still be a
         * second behind ours, and the flush must be in effect there
         * before any record that follows it is. */
        return repl_fmt_flush(hdr, 'F', version,
                              exptime <= current_time ? 0 : exptime);
    }
}

/* A chunked value goes into the ring and the queue chunk by chunk. */
static bool ring_piece(void *arg, const char *p, size_t n)
{
    ring_put(arg, p, n);
    return true;
}

static bool rbuf_piece(void *arg, const char *p, size_t n)
{
    return rbuf_add(arg, p, n);
}

void repl_feed(enum mutation_op op, const struct item *it, uint64_t version,
               uint32_t exptime)
{
    char hdr[REC_LINE_MAX];
    size_t n, data;

    if (repl_applying || !feeding) {
        return;
    }
    n = format_record(hdr, op, it, version, exptime);
    data = op == MUT_STORE ? it->nbytes : 0;
    pthread_mutex_lock(&out_lock);
    ring_put(&ring, hdr, n);
    if (data > 0 && !item_is_chunked(it)) {
        ring_put(&ring, ITEM_data(it), data);
    } else if (data > 0) {
        item_value_pieces(it, data, ring_piece, &ring);
    }
    repl_fed_off = ring.end;
    ring_records++;
    if (mode == STREAM_OFF || mode == STREAM_CATCHUP || out_overflow) {
        pthread_mutex_unlock(&out_lock);
        return;
    }
    if (mode == STREAM_DIRECT) {
        if (ring.end - ring_sent > settings.repl_buffer_size) {
            out_overflow = true;        /* see below */
            wake_locked();
        } else {
            out_items++;
            repl_dirty = true;
        }
        pthread_mutex_unlock(&out_lock);
        return;
    }
    if (outq.len - outq_off + n + data > settings.repl_buffer_size ||
        !rbuf_add(&outq, hdr, n) ||
        (data > 0 && !(item_is_chunked(it)
                           ? item_value_pieces(it, data, rbuf_piece, &outq)
                           : rbuf_add(&outq, ITEM_data(it), data)))) {
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

/* --- sending ------------------------------------------------------------- */


/* Whether this caller may send now: a link to send on, not blocked, and
 * for a worker, a stream it sends itself (the replication thread sends a
 * copy, a catch-up and anything over TLS). */
static bool may_push_locked(bool by_thread)
{
    if (stream_fd < 0 || stream_blocked || stream_errno != 0) {
        return false;
    }
    if ((mode == STREAM_COPY || mode == STREAM_CATCHUP) && !by_thread) {
        return false;           /* the replication thread sends it shortly */
    }
    if (stream_tls != NULL && !by_thread) {
        if (outq_off < outq.len) {
            wake_locked();
        }
        return false;
    }
    if (mode == STREAM_DIRECT && out_overflow) {
        return false;           /* unsent bytes may be overwritten: resync */
    }
    return true;
}

/* The next bytes to send, *want of them, from outq or (direct mode) the
 * ring; NULL when all is sent. */
static const char *next_span_locked(size_t *want, bool *from_ring)
{
    if (mode != STREAM_DIRECT) {
        if (outq_off < outq.len) {
            *want = outq.len - outq_off;
            *from_ring = false;
            return outq.data + outq_off;
        }
        return NULL;
    }
    while (ctrl_runs > 0 && outq_off >= ctrl_run[0].end) {
        memmove(&ctrl_run[0], &ctrl_run[1],
                --ctrl_runs * sizeof(ctrl_run[0]));
    }
    if (ctrl_runs > 0 && ring_sent == ctrl_run[0].at) {
        *want = ctrl_run[0].end - outq_off;
        *from_ring = false;
        return outq.data + outq_off;
    }
    if (ring_sent < ring.end) {
        /* Up to the wrap or the next run; the next turn sends the rest. */
        *from_ring = true;
        return ring_span(&ring, ring_sent,
                         ctrl_runs > 0 ? ctrl_run[0].at : ring.end, want);
    }
    return NULL;
}

/* Everything fed so far is sent: empty outq, and once the ring is big
 * enough, send from the backlog from here on. */
static void sent_all_locked(void)
{
    outq.len = outq_off = 0;
    ctrl_runs = 0;
    if (outq.cap > 4 * SYNC_HIGH_WATER) {
        rbuf_free(&outq);
    }
    if (mode == STREAM_QUEUED && stream_tls == NULL &&
        ring.cap >= settings.repl_buffer_size) {
        mode_set(STREAM_DIRECT);
        ring_sent = ring.end;
    }
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
    size_t want;
    const char *p;
    bool from_ring;

    if (!may_push_locked(by_thread)) {
        return false;
    }
    if (outq_off < outq.len ||
        (mode == STREAM_DIRECT && ring_sent < ring.end)) {
        lag_note_locked(ring_records);
    }
    while ((p = next_span_locked(&want, &from_ring)) != NULL) {
        ssize_t n;
        enum io_fail f;

        if (sent >= SEND_SLICE) {
            if (!by_thread) {
                wake_locked();  /* the thread sends the rest */
            }
            return true;
        }
        n = repl_io_send(stream_fd, stream_tls, p,
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
        f = util_io_fail(n, errno);
        if (f == IO_FAIL_RETRY) {
            continue;
        }
        if (f == IO_FAIL_WAIT) {
            stream_blocked = true;      /* the thread waits for EV_WRITE */
        } else {
            stream_errno = n == 0 ? EPIPE : errno;
        }
        if (!by_thread) {
            wake_locked();
        }
        return false;
    }
    sent_all_locked();
    return false;
}

void repl_worker_push(void)
{
    repl_dirty = false;
    pthread_mutex_lock(&out_lock);
    push_locked(false);
    pthread_mutex_unlock(&out_lock);
}
/* --- the replication thread's side ------------------------------------------
 * Opening and closing the stream for the active link, the catch-up of a
 * partial resync, the full copy's slices, and sending when workers may
 * not (a copy, a catch-up, TLS, a full socket).
 */

/* Fresh stream state, starting with the bytes the link's handshake had
 * not sent yet; the peer holds our records up to peer_has.  Caller holds
 * out_lock. */
static void begin_locked(const char *pending, size_t n, uint64_t peer_has)
{
    outq.len = outq_off = 0;
    ctrl_runs = 0;
    out_overflow = false;
    stream_blocked = false;
    stream_errno = 0;
    lag_head = lag_tail = 0;
    lag_last_end = lag_acked = peer_has;
    if (n > 0) {
        rbuf_add(&outq, pending, n);
    }
}

uint64_t stream_open_copy(int fd, struct tls *tls, const char *pending,
                          size_t n, uint64_t items)
{
    char line[REC_LINE_MAX];
    uint64_t records;
    size_t k;

    /* In one critical section: bytes the handshake had not sent yet, then
     * SYNC with the stream offset from which live records follow it. */
    pthread_mutex_lock(&out_lock);
    begin_locked(pending, n, ring_records);
    k = repl_fmt_sync(line, items, ring.end, ring_records);
    records = ring_records;
    rbuf_add(&outq, line, k);
    stream_fd = fd;
    stream_tls = tls;
    mode_set(STREAM_COPY);
    pthread_mutex_unlock(&out_lock);
    return records;
}

uint64_t stream_open_catchup(int fd, struct tls *tls, uint64_t from,
                             uint64_t records)
{
    uint64_t end;

    pthread_mutex_lock(&out_lock);
    begin_locked(NULL, 0, records);
    psync_next = from;
    stream_fd = fd;
    stream_tls = tls;
    mode_set(STREAM_CATCHUP);
    end = ring.end;
    pthread_mutex_unlock(&out_lock);
    return end;
}

bool stream_backlog_has(uint64_t off)
{
    bool has;

    pthread_mutex_lock(&out_lock);
    has = ring_has(&ring, off);
    pthread_mutex_unlock(&out_lock);
    return has;
}

enum catchup_step stream_catchup_step(struct rbuf *tx)
{
    enum catchup_step r;

    pthread_mutex_lock(&out_lock);
    if (mode != STREAM_CATCHUP) {
        r = CATCHUP_NONE;
    } else if (psync_next < ring_start(&ring)) {
        r = CATCHUP_LOST;
    } else if (psync_next == ring.end) {
        mode_set(STREAM_QUEUED);
        r = CATCHUP_DONE;
    } else {
        size_t k = ring_copy(&ring, psync_next, CATCHUP_CHUNK, tx);
        psync_next += k;
        r = k == 0 ? CATCHUP_LOST : CATCHUP_MORE;
    }
    pthread_mutex_unlock(&out_lock);
    return r;
}

void stream_flush(bool writable, struct stream_flush_result *r)
{
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
    r->blocked = stream_blocked;
    r->err = stream_errno;
    r->overflow = out_overflow;
    out_woken = false;
    pthread_mutex_unlock(&out_lock);
}

void stream_queue_ctrl(const char *line, size_t n)
{
    pthread_mutex_lock(&out_lock);
    if (!rbuf_add(&outq, line, n)) {
        out_overflow = true;        /* out of memory: resync */
    } else if (mode == STREAM_DIRECT) {
        /* after the records fed so far */
        struct ctrl_run *last = ctrl_runs > 0 ? &ctrl_run[ctrl_runs - 1]
                                              : NULL;
        if (last == NULL || (last->at != ring.end && ctrl_runs < CTRL_RUNS)) {
            last = &ctrl_run[ctrl_runs++];
        }
        last->at = ring.end;
        last->end = outq.len;
    }
    pthread_mutex_unlock(&out_lock);
}

void stream_queue_copy(struct rbuf *slice)
{
    pthread_mutex_lock(&out_lock);
    if (outq_off == outq.len) {
        /* Nothing queued: hand the slice over without a copy. */
        struct rbuf t = outq;
        outq = *slice;
        *slice = t;
        outq_off = 0;
    } else if (!rbuf_add(&outq, slice->data, slice->len)) {
        out_overflow = true;    /* out of memory: resync */
    }
    /* Send it while it is still in the cache. */
    (void)push_locked(true);
    pthread_mutex_unlock(&out_lock);
    slice->len = 0;
}

void stream_copy_done(void)
{
    pthread_mutex_lock(&out_lock);
    mode_set(STREAM_QUEUED);
    pthread_mutex_unlock(&out_lock);
}

size_t stream_pending(void)
{
    size_t n;

    pthread_mutex_lock(&out_lock);
    n = outq.len - outq_off;
    pthread_mutex_unlock(&out_lock);
    return n;
}

void stream_close(void)
{
    pthread_mutex_lock(&out_lock);
    stream_fd = -1;         /* workers stop sending before close(2) */
    stream_tls = NULL;
    mode_set(STREAM_OFF);
    outq.len = outq_off = 0;
    ctrl_runs = 0;
    out_overflow = false;
    stream_blocked = false;
    stream_errno = 0;
    lag_head = lag_tail = 0;
    pthread_mutex_unlock(&out_lock);
}

void stream_discard(void)
{
    pthread_mutex_lock(&out_lock);
    out_woken = false;
    outq.len = outq_off = 0;
    ctrl_runs = 0;
    pthread_mutex_unlock(&out_lock);
}

bool stream_enabled(void)
{
    return __atomic_load_n(&mode, __ATOMIC_ACQUIRE) != STREAM_OFF;
}

/* --- acknowledgements, lag and stats ------------------------------------- */

bool stream_ack(uint64_t offset, uint64_t records)
{
    bool moved = false;

    if (offset > __atomic_load_n(&acked_off, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&acked_off, offset, __ATOMIC_RELEASE);
        moved = true;
    }
    pthread_mutex_lock(&out_lock);
    if (records > lag_acked) {
        lag_acked = records;
    }
    while (lag_tail != lag_head && lag_ring[lag_tail].end <= records) {
        lag_tail = (lag_tail + 1) % LAG_SAMPLES;
    }
    pthread_mutex_unlock(&out_lock);
    return moved;
}

uint64_t stream_lag_ms(uint64_t now)
{
    uint64_t ms;

    pthread_mutex_lock(&out_lock);
    ms = lag_tail == lag_head || lag_ring[lag_tail].us > now
         ? 0 : (now - lag_ring[lag_tail].us) / 1000;
    pthread_mutex_unlock(&out_lock);
    return ms;
}

void stream_stats(struct stream_stats *s)
{
    pthread_mutex_lock(&out_lock);
    s->items_queued = out_items;
    s->sent = stream_sent_total;
    s->unsent = outq.len - outq_off +
                (mode == STREAM_DIRECT ? ring.end - ring_sent : 0);
    s->records = ring_records;
    s->backlog_first = ring_start(&ring);
    s->backlog_end = ring.end;
    s->backlog_size = ring.cap;
    pthread_mutex_unlock(&out_lock);
}

void stream_nak(uint64_t off)
{
    pthread_mutex_lock(&out_lock);
    nak_off[nak_next++ % NAK_KEPT] = off;
    pthread_mutex_unlock(&out_lock);
}

bool repl_write_failed(uint64_t off)
{
    bool failed = false;
    unsigned i;

    if (off == 0) {
        return false;
    }
    pthread_mutex_lock(&out_lock);
    for (i = 0; i < NAK_KEPT && i < nak_next; i++) {
        if (nak_off[i] == off) {
            failed = true;
            break;
        }
    }
    pthread_mutex_unlock(&out_lock);
    return failed;
}

uint64_t repl_acked_off(void)
{
    return __atomic_load_n(&acked_off, __ATOMIC_ACQUIRE);
}

bool repl_linked(void)
{
    return __atomic_load_n(&mode, __ATOMIC_ACQUIRE) != STREAM_OFF;
}

/* --- a warm restart (repl_persist.c) ---------------------------------------
 * Before repl_start's hook is on, and after every writer stopped: no
 * lock is contended, it is taken for form.
 */
bool stream_save(struct rbuf *out, struct stream_saved *sv)
{
    bool ok = true;

    pthread_mutex_lock(&out_lock);
    sv->first = ring.cap > 0 ? ring_start(&ring) : ring.end;
    sv->end = ring.end;
    sv->records = ring_records;
    sv->acked = __atomic_load_n(&acked_off, __ATOMIC_ACQUIRE);
    if (sv->end > sv->first) {
        ok = ring_copy(&ring, sv->first, (size_t)(sv->end - sv->first),
                       out) == sv->end - sv->first;
    }
    pthread_mutex_unlock(&out_lock);
    return ok;
}

void stream_restore(const struct stream_saved *sv, const char *data)
{
    pthread_mutex_lock(&out_lock);
    ring_restore(&ring, sv->first, sv->end, data);
    ring_records = sv->records;
    __atomic_store_n(&acked_off, sv->acked, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&out_lock);
}
