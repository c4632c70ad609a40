/*
 * repl_persist.c - replication across a warm restart (-e): its section
 * of the memory file (run id, node id, the peer offsets applied, our
 * stream's backlog and what the peer acknowledged), the checks that
 * refuse a file of another pair or too old, the gate that keeps a
 * restored node's client port closed until it caught up from its peer's
 * backlog, the drain at a clean stop, and start_* in stats.  The file
 * itself is restart.c's; the link and stream are their modules'.
 */
#include "repl_persist.h"
#include "memcached.h"
#include "repl_apply.h"
#include "repl_link.h"
#include "repl_stream.h"
#include "items.h"
#include "log.h"
#include "restart.h"
#include "settings.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECTION_VERSION 1
#define FIXED_BYTES 80              /* the section before the peer's name */
#define PEER_NAME_MAX 255

/*
 * The section, native byte order:
 *    0 u32 version       4 u32 node id        8 u64 run id
 *   16 u64 peer run id  24 u64 its offset    32 u64 its records  (applied)
 *   40 u64 backlog first 48 u64 end          56 u64 records      64 acked
 *   72 u32 repl_port    76 u32 name length   80 -x as given, then the
 *   backlog's bytes [first, end).
 */
struct saved {
    uint32_t version;           /* SECTION_VERSION */
    uint32_t node_id;           /* repl_node_id */
    uint64_t run_id;            /* repl_run_id */
    struct peer_applied applied;    /* the peer's stream applied here */
    struct stream_saved stream; /* our stream: backlog span, counters */
    uint32_t port;              /* repl_port */
    uint32_t name_len;          /* bytes of the -x it was saved with */
    const char *name;           /* ... in the file, not terminated */
    const char *backlog;        /* stream.end - stream.first bytes */
};

/* Everything below is written by the replication thread (and read by
 * stats) under repl_stats_lock, or before it starts. */
static enum start_mode mode = START_COLD;
static bool holding;                /* the gate waits for the catch-up */
static bool peer_end_known;         /* the peer's RESUME had its end */
static uint64_t peer_end;           /* ... which was this */
static uint64_t catchup_off0, catchup_rec0;  /* at PSYNC */
static uint64_t catchup_bytes, catchup_records;
static uint64_t ready_ms;           /* start to client port, 0: not yet */
static uint64_t started_us;

const char *start_mode_name(enum start_mode m)
{
    switch (m) {
    case START_COLD:
        return "cold";
    case START_WARM:
        return "warm";
    case START_PARTIAL:
        return "partial";
    case START_FULL:
        return "full";
    }
    return "?";
}

static bool parse(const char *p, uint64_t n, struct saved *s)
{
    if (p == NULL || n < FIXED_BYTES) {
        return false;
    }
    memcpy(&s->version, p, 4);
    memcpy(&s->node_id, p + 4, 4);
    memcpy(&s->run_id, p + 8, 8);
    memcpy(&s->applied.run, p + 16, 8);
    memcpy(&s->applied.off, p + 24, 8);
    memcpy(&s->applied.rec, p + 32, 8);
    memcpy(&s->stream.first, p + 40, 8);
    memcpy(&s->stream.end, p + 48, 8);
    memcpy(&s->stream.records, p + 56, 8);
    memcpy(&s->stream.acked, p + 64, 8);
    memcpy(&s->port, p + 72, 4);
    memcpy(&s->name_len, p + 76, 4);
    if (s->version != SECTION_VERSION || s->name_len > PEER_NAME_MAX ||
        s->stream.end < s->stream.first ||
        n != FIXED_BYTES + s->name_len + (s->stream.end - s->stream.first)) {
        return false;
    }
    s->name = p + FIXED_BYTES;
    s->backlog = s->name + s->name_len;
    return true;
}

const char *persist_check(const char *p, uint64_t n, uint64_t age)
{
    static char why[160];
    struct saved s;

    if (settings.repl_peer == NULL) {
        return NULL;            /* no pair now: the items are all we use */
    }
    if (p == NULL) {
        return "saved by a node without a peer (-x): its data is not the "
               "pair's";
    }
    if (!parse(p, n, &s)) {
        return "its replication section is malformed or of another "
               "version";
    }
    if (s.run_id == 0 || s.node_id > 0xFF || s.applied.off > (1ULL << 62) ||
        s.stream.end > (1ULL << 62)) {
        return "its replication section holds impossible values";
    }
    if (s.name_len != strlen(settings.repl_peer) ||
        memcmp(s.name, settings.repl_peer, s.name_len) != 0 ||
        s.port != (uint32_t)settings.repl_port) {
        snprintf(why, sizeof(why), "from another pair (saved with -x %.*s "
                 "and repl_port %u; now -x %s and %d)", (int)s.name_len,
                 s.name, s.port, settings.repl_peer, settings.repl_port);
        return why;
    }
    if (age > (uint64_t)settings.repl_tombstone_ttl) {
        snprintf(why, sizeof(why), "stale: saved %llu s ago, longer than "
                 "repl_tombstone_ttl (%d s), so deletes made since may "
                 "have been forgotten by the peer",
                 (unsigned long long)age, settings.repl_tombstone_ttl);
        return why;
    }
    return NULL;
}

bool persist_save(struct rbuf *out)
{
    unsigned char fixed[FIXED_BYTES];
    struct stream_saved sv;
    struct rbuf backlog = {NULL, 0, 0};
    uint32_t v = SECTION_VERSION, node = repl_node_id;
    uint32_t port = (uint32_t)settings.repl_port;
    uint32_t nlen = (uint32_t)strlen(settings.repl_peer);
    bool ok;

    if (nlen > PEER_NAME_MAX || !stream_save(&backlog, &sv)) {
        rbuf_free(&backlog);
        return false;
    }
    memcpy(fixed, &v, 4);
    memcpy(fixed + 4, &node, 4);
    memcpy(fixed + 8, &repl_run_id, 8);
    memcpy(fixed + 16, &repl_applied.run, 8);
    memcpy(fixed + 24, &repl_applied.off, 8);
    memcpy(fixed + 32, &repl_applied.rec, 8);
    memcpy(fixed + 40, &sv.first, 8);
    memcpy(fixed + 48, &sv.end, 8);
    memcpy(fixed + 56, &sv.records, 8);
    memcpy(fixed + 64, &sv.acked, 8);
    memcpy(fixed + 72, &port, 4);
    memcpy(fixed + 76, &nlen, 4);
    ok = rbuf_add(out, fixed, sizeof(fixed)) &&
         rbuf_add(out, settings.repl_peer, nlen) &&
         (backlog.len == 0 || rbuf_add(out, backlog.data, backlog.len));
    rbuf_free(&backlog);
    return ok;
}

bool persist_restore(void)
{
    struct saved s;
    uint64_t n = 0;
    const char *p;

    started_us = restart_open_us() ? restart_open_us() : util_mono_us();
    if (restart_outcome() != RESTART_WARM) {
        return false;
    }
    p = restart_section_data(RESTART_SEC_REPL, &n);
    if (!parse(p, n, &s)) {
        return false;           /* persist_check let it through: no -x */
    }
    repl_run_id = s.run_id;
    repl_node_id = s.node_id;
    items_set_node_id(repl_node_id);
    repl_applied = s.applied;
    stream_restore(&s.stream, s.backlog);
    mode = START_WARM;
    log_warn("replication: restored run id %016llx, node id %u, our stream "
             "at offset %llu (backlog from %llu), the peer's %016llx at "
             "offset %llu; resuming with a partial resync",
             (unsigned long long)s.run_id, s.node_id,
             (unsigned long long)s.stream.end,
             (unsigned long long)s.stream.first,
             (unsigned long long)s.applied.run,
             (unsigned long long)s.applied.off);
    return true;
}

/* --- the gate of a restored node -------------------------------------------
 * A restored node holds its data, but not what the peer took while it
 * was stopped.  Its client port opens once it has applied the peer's
 * stream up to where the peer's RESUME said it ended: every write the
 * peer had answered before the link came back.  A peer that did not say
 * (an older paircached) opens it at PSYNC, as before.  Replication
 * thread.
 */
void persist_note_peer_end(bool known, uint64_t end)
{
    peer_end_known = known;
    peer_end = end;
}

static void note_ready(bool partial)
{
    pthread_mutex_lock(&repl_stats_lock);
    if (partial) {
        catchup_bytes = repl_applied.off - catchup_off0;
        catchup_records = repl_applied.rec - catchup_rec0;
    }
    if (ready_ms == 0) {
        ready_ms = (util_mono_us() - started_us) / 1000 + 1;
    }
    pthread_mutex_unlock(&repl_stats_lock);
}

bool persist_hold_gate(void)
{
    if (mode == START_WARM) {
        pthread_mutex_lock(&repl_stats_lock);
        mode = START_PARTIAL;
        catchup_off0 = repl_applied.off;
        catchup_rec0 = repl_applied.rec;
        pthread_mutex_unlock(&repl_stats_lock);
    } else if (mode != START_PARTIAL || ready_ms != 0) {
        return false;           /* not restored, or already serving */
    }
    /* Restored and not serving yet (a link lost during the catch-up
     * lands here again): wait for the peer's end of this RESUME. */
    holding = peer_end_known && repl_applied.off < peer_end;
    if (!holding) {
        note_ready(true);
    }
    return holding;
}

void persist_gate_check(void)
{
    if (!holding || repl_applied.off < peer_end) {
        return;
    }
    holding = false;
    note_ready(true);
    log_info("replication: caught up from the peer's backlog after a warm "
             "restart: %llu records, %llu bytes",
             (unsigned long long)catchup_records,
             (unsigned long long)catchup_bytes);
    signal_ready("caught up from the peer's backlog after a warm restart");
}

void persist_note_full(void)
{
    pthread_mutex_lock(&repl_stats_lock);
    if (mode == START_COLD || mode == START_WARM) {
        mode = START_FULL;
    }
    pthread_mutex_unlock(&repl_stats_lock);
    holding = false;
    note_ready(false);
}

/* --- a clean stop ------------------------------------------------------ */

void repl_drain(unsigned ms)
{
    struct stream_stats ss;
    uint64_t deadline = util_mono_us() + (uint64_t)ms * 1000;

    if (!repl_enabled()) {
        return;
    }
    stream_stats(&ss);
    while (repl_linked() && repl_acked_off() < ss.backlog_end) {
        if (util_mono_us() >= deadline) {
            log_warn("replication: stopping with %llu bytes of our stream "
                     "not acknowledged by the peer; it gets them when this "
                     "node is back (-e) or from a full copy",
                     (unsigned long long)(ss.backlog_end -
                                          repl_acked_off()));
            return;
        }
        usleep(5000);
    }
}

void persist_stats(struct strbuf *sb)
{
    enum start_mode m;
    uint64_t recs, bytes, rms;

    pthread_mutex_lock(&repl_stats_lock);
    m = mode;
    recs = catchup_records;
    bytes = catchup_bytes;
    rms = ready_ms;
    pthread_mutex_unlock(&repl_stats_lock);
    sb_stat(sb, "start_mode", "%s", start_mode_name(m));
    sb_stat(sb, "start_memory_file", "%s",
            restart_outcome_name(restart_outcome()));
    sb_stat(sb, "start_catchup_records", "%llu", (unsigned long long)recs);
    sb_stat(sb, "start_catchup_bytes", "%llu", (unsigned long long)bytes);
    sb_stat(sb, "start_ready_ms", "%llu",
            (unsigned long long)(rms > 0 ? rms - 1 : 0));
}
