/*
 * repl_apply.c - what the peer sends once the handshake is done: each
 * record decoded (repl_codec.c) and applied to storage (items_apply.c decides
 * last writer wins), each control line handled, and the version bound
 * that keeps a far-future version from poisoning our clock.  Reading the
 * socket is repl_link_io.c's, closing the link replication.c's.
 */
#include "memcached.h"
#include "repl_apply.h"
#include "repl_health.h"
#include "repl_auth.h"
#include "repl_check.h"
#include "repl_codec.h"
#include "repl_link.h"
#include "repl_persist.h"
#include "repl_stream.h"
#include "repl_walk.h"
#include "repl_wake.h"
#include "assoc.h"
#include "hash.h"
#include "items.h"
#include "items_apply.h"
#include "log.h"
#include "settings.h"
#include "thread.h"

#include <string.h>

#define SKEW_WARN_MS 1000       /* log a skew larger than this */
#define VERSION_MS_SHIFT 20     /* items.c: version = ms << 20 | ... */
#define FUTURE_MARGIN_MS (5 * 60 * 1000)    /* versions past the clocks */
#define LEAD_TRUST_MS (24 * 60 * 60 * 1000) /* most peer clock lead used */
#define PEER_MS_MAX (1ULL << 44)    /* larger wall clocks are nonsense */

struct peer_applied repl_applied;

/* The largest flush cutoff this node has made or accepted: a delayed
 * flush_all cuts at a version in the future, which the peer's clock
 * then takes on (item_apply_flush), so its versions may run that far
 * ahead.  Atomic: workers raise it through the hook. */
static uint64_t flush_seen;

void repl_note_flush_cutoff(uint64_t cutoff)
{
    uint64_t cur = __atomic_load_n(&flush_seen, __ATOMIC_RELAXED);

    while (cutoff > cur &&
           !__atomic_compare_exchange_n(&flush_seen, &cur, cutoff, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}



/*
 * A sample of the peer's wall clock (HELLO, PING), in ms.  Each sample
 * is the true skew minus however long the line took to be sent, carried
 * and handled, never plus, so the largest of the last few is the best
 * estimate: a line handled late (a starved thread, a stopped peer
 * resumed) does not move it.  Logged once when it goes over
 * SKEW_WARN_MS either way, and once when it is back.
 */
void apply_note_skew(struct link *l, uint64_t peer_ms)
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


/* --- the version bound --------------------------------------------------- */


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
    return link_refuse(l, FAULT_VERSION, "a version past the clocks");
}

/* A flush cutoff may also be a delayed flush_all's: at most the start of
 * the second after it takes effect (items.c, item_flush). */
static int check_flush(struct link *l, uint64_t cutoff, uint64_t at)
{
    if (cutoff <= ((at + 1) * 1000) << VERSION_MS_SHIFT) {
        repl_note_flush_cutoff(cutoff);
        return 0;
    }
    return check_version(l, cutoff, "flush cutoff");
}

/* --- records ------------------------------------------------------------- */



/* Only the replication thread writes these two; stats reads them racily
 * (64-bit aligned, never torn on the platforms we build for). */
static void count_applied(enum apply_result r)
{
    __atomic_store_n(&repl_rs.items_received, repl_rs.items_received + 1,
                     __ATOMIC_RELAXED);
    if (r == APPLY_STALE) {
        __atomic_store_n(&repl_rs.items_stale, repl_rs.items_stale + 1,
                         __ATOMIC_RELAXED);
    }
}

/* The item bits a record's key mark and meta marks stand for. */
static uint8_t item_marks(const struct repl_rec *r)
{
    return (uint8_t)((r->binary ? ITEM_KEY_BINARY : 0) |
                     ((r->marks & REPL_MARK_STALE) ? ITEM_STALE : 0) |
                     ((r->marks & REPL_MARK_TOKEN) ? ITEM_TOKEN_SENT : 0));
}

/*
 * A record of the peer's that this node could not store (memory full
 * under -M, no page for its class): items_apply.c already removed any older
 * value, so that it is never served as current.  Count it, log it (the
 * first and every 1000th), and, for a live record, tell the peer which
 * write it was (NAK <offset after it>), so that repl_wait and repl_sync
 * do not answer OK for it.  A copy record has no offset: the pair
 * digest, compared by the anti-entropy check, shows the difference.
 */
static void store_failed(struct link *l, const struct repl_rec *r,
                         uint64_t end_off)
{
    uint64_t n;

    pthread_mutex_lock(&repl_stats_lock);
    n = ++repl_rs.store_failures;
    pthread_mutex_unlock(&repl_stats_lock);
    if (n % 1000 == 1) {
        log_warn("replication %s: out of memory for a record of %llu "
                 "bytes from the peer (%llu so far); its older value here "
                 "was removed", l->addr, (unsigned long long)r->vlen,
                 (unsigned long long)n);
    }
    if (r->live) {
        char line[REC_LINE_MAX];
        send_ctl(l, line, repl_fmt_nak(line, end_off));
    }
}

/* S or s: the data must be all here, followed by \r\n.  While applying
 * it, work out the next record's key hash so that its bucket is
 * prefetched. */
static int apply_store(struct link *l, const struct repl_rec *r,
                       const char *start, size_t linelen, size_t avail)
{
    size_t whole = linelen + (size_t)r->vlen + 2;
    uint32_t hv;
    enum apply_result res;

    if (check_version(l, r->version, "version") != 0) {
        return -1;
    }
    if (avail < whole) {
        return 0;               /* the data is not all here yet */
    }
    if (start[whole - 2] != '\r' || start[whole - 1] != '\n') {
        return link_refuse(l, FAULT_PROTOCOL,
                           "no \\r\\n after an S record's data");
    }
    hv = l->hint_ok && l->hint_off == l->in_off && !r->b64
             ? l->hint_hv : hash(r->key, r->nkey);
    l->hint_off = l->in_off + whole;
    l->hint_ok = repl_peek_store_hash(start + whole, avail - whole,
                                      &l->hint_hv);
    res = item_apply_store(r->key, r->nkey, hv, (uint32_t)r->flags,
                           (uint32_t)r->exptime, r->version,
                           start + linelen, (size_t)r->vlen,
                           item_marks(r), l->hint_ok ? &l->hint_hv : NULL,
                           !r->live);
    count_applied(res);
    l->in_off += whole;
    l->rx_items++;
    if (r->live) {
        repl_applied.off += whole;
        repl_applied.rec++;
    }
    if (res == APPLY_NO_MEMORY) {
        store_failed(l, r, repl_applied.off);
    }
    return 1;
}

static int apply_delete(struct link *l, const struct repl_rec *r)
{
    if (check_version(l, r->version, "version") != 0) {
        return -1;
    }
    count_applied(item_apply_delete(r->key, r->nkey, r->version));
    l->rx_items++;
    return 1;
}

static int apply_touch(struct link *l, const struct repl_rec *r)
{
    if (check_version(l, r->version, "version") != 0) {
        return -1;
    }
    count_applied(item_apply_touch(r->key, r->nkey, (uint32_t)r->exptime,
                                   r->version));
    l->rx_items++;
    return 1;
}

static int apply_marks(struct link *l, const struct repl_rec *r)
{
    if (check_version(l, r->version, "version") != 0) {
        return -1;
    }
    count_applied(item_apply_marks(r->key, r->nkey, r->version,
                                   item_marks(r)));
    l->rx_items++;
    return 1;
}

static int apply_flush(struct link *l, const struct repl_rec *r)
{
    if (check_flush(l, r->version, r->at) != 0) {
        return -1;
    }
    /* at 0: an immediate flush, in effect from our current second */
    item_apply_flush(r->version,
                     r->at == 0 ? current_time : (uint32_t)r->at);
    count_applied(APPLY_DONE);
    l->rx_items++;
    return 1;
}

/* --- control lines ------------------------------------------------------- */

/* A peer woken from a stall asks (PING w<n>); the PONG is queued behind
 * every record sent so far (send_ctl).  A woken peer asks once per
 * stall: a peer that asks more than PONG_PER_SEC times a second gets no
 * more answers that second, so that it cannot grow our queue while it
 * does not read. */
#define PONG_PER_SEC 4
static void answer_ask(struct link *l, uint64_t serial)
{
    char line[REC_LINE_MAX];
    uint64_t now = util_mono_us();

    if (now - l->pong_window_us >= 1000000) {
        l->pong_window_us = now;
        l->pongs = 0;
    }
    if (l->pongs >= PONG_PER_SEC) {
        if (l->pongs++ == PONG_PER_SEC) {
            log_info("replication %s: the peer asks for PONGs more than %d "
                     "times a second; not answering the rest", l->addr,
                     PONG_PER_SEC);
        }
        return;
    }
    l->pongs++;
    send_ctl(l, line, repl_fmt_pong(line, serial));
}

/* Liveness (last_rx_us is already updated), and the peer's wall clock
 * for the skew. */
static int on_ping(struct link *l, const struct repl_rec *r)
{
    if (r->ask) {
        answer_ask(l, r->serial);
        return 1;
    }
    if (r->has_ms) {
        apply_note_skew(l, r->ms);
        if (l->in_state == IN_LIVE) {
            wake_on_ping(r->ms, l->skew_ms);
        }
    }
    if (repl_regated() && l->in_state == IN_LIVE) {
        /* Everything the peer sent before this PING is applied. */
        signal_ready("caught up with the peer after a stall");
    }
    return 1;
}

/* The answer to our PING w<n>: everything the peer sent before it is
 * applied.  Only on a live link: during a full copy it proves nothing
 * (the link asks again when the copy is done). */
static int on_pong(struct link *l, const struct repl_rec *r)
{
    if (l->in_state != IN_LIVE) {
        return 1;
    }
    wake_on_pong(r->serial);
    if (repl_regated() && r->serial == l->wake_asked) {
        signal_ready("caught up with the peer after a stall");
    }
    return 1;
}

/* The peer applied our stream up to r->offset: synchronous writes may be
 * answered, and the lag shrinks. */
static int on_ack(struct link *l, const struct repl_rec *r)
{
    if (stream_ack(r->offset, r->records) && settings.repl_sync) {
        workers_wake_repl();
    }
    l->peer_acked_items = r->records;
    return 1;
}

/* The peer could not store our record that ends at r->offset: repl_wait
 * and synchronous writes must not answer OK for it.  It arrives before
 * the ACK that covers it. */
static int on_nak(const struct repl_rec *r)
{
    uint64_t n;

    stream_nak(r->offset);
    pthread_mutex_lock(&repl_stats_lock);
    n = ++repl_rs.peer_store_failures;
    pthread_mutex_unlock(&repl_stats_lock);
    if (n % 1000 == 1) {
        log_warn("replication: the peer could not store a write of ours "
                 "(out of memory there; %llu so far)", (unsigned long long)n);
    }
    return 1;
}

/* A full copy starts.  The offset only counts once the copy is complete:
 * a copy cut short must be redone in full, not resumed.  The peer sends
 * one SYNC or PSYNC per link, answering our RESUME. */
static int on_sync(struct link *l, const struct repl_rec *r)
{
    uint64_t items = r->items;

    if (l->in_state != IN_RESUMED) {
        return link_refuse(l, FAULT_PROTOCOL, "SYNC after SYNC or PSYNC");
    }
    repl_applied.rec = r->records;
    repl_applied.run = 0;
    repl_applied.off = r->offset;
    log_event("replication %s: full resync started, receiving a full copy "
              "(%llu items)",
             l->addr, (unsigned long long)items);
    l->copy_rx0 = l->copy_seen = l->rx_items;
    l->copy_expected = items;
    l->copy_moved_us = util_mono_us();
    repl_note_sync(true);
    link_in_set_state(l, IN_COPY);
    copy_sched_update();
    /* Size the hash table for the copy, but never beyond what -m can
     * hold (an item takes at least 64 bytes). */
    assoc_reserve(assoc_count() +
                  (items < settings.maxbytes / 64 ? items
                                                  : settings.maxbytes / 64));
    return 1;
}

/* Our backlog from where we stopped follows. */
static int on_psync(struct link *l, const struct repl_rec *r)
{
    if (l->in_state != IN_RESUMED) {
        return link_refuse(l, FAULT_PROTOCOL, "PSYNC after SYNC or PSYNC");
    }
    if (repl_applied.run != l->peer_run_id ||
        r->offset != repl_applied.off) {
        return -1;
    }
    log_event("replication %s: partial resync started, catching up from "
              "the peer's backlog", l->addr);
    repl_note_sync(false);
    repl_note_peer_synced();
    if (!persist_hold_gate() && !repl_regated()) {
        signal_ready("caught up with the peer");
    }
    link_in_set_state(l, IN_LIVE);
    return 1;
}

static int on_synced(struct link *l)
{
    if (l->in_state != IN_COPY) {
        return link_refuse(l, FAULT_PROTOCOL, "SYNCED without SYNC");
    }
    log_event("replication %s: full resync done, full copy received",
              l->addr);
    repl_applied.run = l->peer_run_id;
    repl_note_peer_synced();
    persist_note_full();
    signal_ready("first sync with the peer done");
    /* Last: stats that show "linked" show the rest too. */
    link_in_set_state(l, IN_LIVE);
    copy_sched_update();
    return 1;
}

/* Everything but S, which has data: 1, or -1 refused. */
static int apply_line(struct link *l, const struct repl_rec *r)
{
    switch (r->type) {
    case REC_DELETE:
        return apply_delete(l, r);
    case REC_TOUCH:
        return apply_touch(l, r);
    case REC_FLUSH:
        return apply_flush(l, r);
    case REC_MARKS:
        return apply_marks(l, r);
    case REC_PING:
        return on_ping(l, r);
    case REC_PONG:
        return on_pong(l, r);
    case REC_ACK:
        return on_ack(l, r);
    case REC_SYNC:
        return on_sync(l, r);
    case REC_PSYNC:
        return on_psync(l, r);
    case REC_SYNCED:
        return on_synced(l);
    case REC_NAK:
        return on_nak(r);
    case REC_DIGEST:
        return check_on_digest(l, r);
    case REC_RESYNC:
        return check_on_resync(l);
    case REC_STORE:
    default:
        return -1;
    }
}

int apply_one(struct link *l)
{
    const char *start = l->in.data + l->in_off;
    size_t avail = l->in.len - l->in_off;
    const char *eol = memchr(start, '\n', avail > REC_LINE_MAX ? REC_LINE_MAX
                                                               : avail);
    struct repl_rec r;
    size_t linelen, len;
    int rc;

    if (eol == NULL) {
        return avail >= REC_LINE_MAX ? -1 : 0;
    }
    linelen = (size_t)(eol - start) + 1;
    len = linelen - 1;
    if (len > 0 && start[len - 1] == '\r') {
        len--;
    }
    if (l->out_state == OUT_HANDSHAKE) {
        /* Until the peer's RESUME is handled, a line is the handshake's. */
        char line[REC_LINE_MAX + 1];
        memcpy(line, start, len);
        line[len] = '\0';
        l->in_off += linelen;
        return auth_line(l, line, len);
    }
    if (repl_decode(start, len, (uint64_t)settings.item_size_max, &r) != 0) {
        return -1;
    }
    if (r.type == REC_STORE) {
        return apply_store(l, &r, start, linelen, avail);
    }
    rc = apply_line(l, &r);
    if (rc != 1) {
        return rc;
    }
    if (r.live) {
        repl_applied.off += linelen;
        repl_applied.rec++;
    }
    l->in_off += linelen;
    return 1;
}

/* Tell the peer what we applied: bytes and records on this link, and
 * its stream offset and record count. */
void apply_send_ack(struct link *l)
{
    char line[REC_LINE_MAX];

    send_ctl(l, line, repl_fmt_ack(line, l->rx_offset, l->rx_items,
                                   repl_applied.off, repl_applied.rec));
    l->acked_rx = l->rx_items;
}
