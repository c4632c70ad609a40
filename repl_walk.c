/*
 * repl_walk.c - what the peer missed, sent: RESUME answered with a
 * partial resync (the backlog, repl_stream.c) or a full copy, the copy's
 * walk of the hash table a slice of buckets at a time, and the CPU
 * policy while a copy runs.  Applying a copy is repl_apply.c's.
 */
#include "memcached.h"
#include "repl_walk.h"
#include "repl_codec.h"
#include "repl_health.h"
#include "repl_link.h"
#include "repl_persist.h"
#include "repl_stream.h"
#include "assoc.h"
#include "item_chunk.h"
#include "items.h"
#include "log.h"
#include "settings.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SYNC_SLICE 256          /* buckets walked per step */

/* --- scheduling class of the replication thread -----------------------------
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

/* Whether a thread can leave SCHED_IDLE: -1 not known yet, 0 no, 1 yes.
 * Atomic: main sets it once the privileges are dropped
 * (copy_check_priority), the replication thread reads it, and probes
 * itself if main has not yet (then main's answer replaces a probe made
 * while still root). */
static int idle_known = -1;

/* Any thread may enter SCHED_IDLE, but only CAP_SYS_NICE or an
 * RLIMIT_NICE of 20 lets it leave (memcached.c raises the limit before
 * dropping root).  A throwaway thread tries both ways once. */
static bool idle_copy_possible(void)
{
    int known = __atomic_load_n(&idle_known, __ATOMIC_RELAXED);
    bool ok = false;
    pthread_t t;

    if (known >= 0) {
        return known == 1;
    }
    if (pthread_create(&t, NULL, sched_probe_main, &ok) == 0) {
        pthread_join(t, NULL);
    }
    __atomic_store_n(&idle_known, ok ? 1 : 0, __ATOMIC_RELAXED);
    if (!ok) {
        /* Said with its cause once at start (copy_check_priority). */
        log_info("replication: full copies run at normal priority");
    }
    return ok;
}

/* Called by main once the privileges are dropped: say now, once, and
 * only when it is so, that full copies cannot run at idle priority, and
 * why.  Before 2026-12-07 the first copy said it, vaguely, every start. */
void copy_check_priority(void)
{
    struct rlimit rl;
    bool ok = false;
    pthread_t t;

    if (!settings.repl_idle_copy) {
        return;
    }
    if (pthread_create(&t, NULL, sched_probe_main, &ok) == 0) {
        pthread_join(t, NULL);
    }
    __atomic_store_n(&idle_known, ok ? 1 : 0, __ATOMIC_RELAXED);
    if (ok) {
        return;
    }
    if (getrlimit(RLIMIT_NICE, &rl) != 0) {
        rl.rlim_cur = rl.rlim_max = 0;
    }
    log_warn("replication: full copies will run at normal CPU priority, "
             "not idle: RLIMIT_NICE is %llu (hard %llu) and the process "
             "has no CAP_SYS_NICE, so a thread could not return from idle; "
             "raise the limit to 20 (ulimit -e 20, systemd LimitNICE=20, "
             "or start as root with CAP_SYS_RESOURCE), or give -o "
             "repl_idle_copy=0", (unsigned long long)rl.rlim_cur,
             (unsigned long long)rl.rlim_max);
}

/* Call after a link starts or ends sending or receiving a copy, or
 * closes: the class follows whether any open link is copying. */
void copy_sched_update(void)
{
    bool copying = false, want;
    struct sched_param sp = { .sched_priority = 0 };
    int i;

    for (i = 0; i < MAX_LINKS; i++) {
        const struct link *l = &repl_links[i];
        if (l->fd >= 0 && (l->out_state == OUT_COPY ||
                           l->in_state == IN_COPY)) {
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

bool copy_is_idle(void)
{
    return __atomic_load_n(&copy_idle, __ATOMIC_RELAXED);
}

uint64_t copy_starved_total(void)
{
    return __atomic_load_n(&copy_starved_count, __ATOMIC_RELAXED);
}

void copy_note_cron(uint64_t now)
{
    __atomic_store_n(&cron_last_us, now, __ATOMIC_RELAXED);
}

void copy_note_thread(void)
{
    __atomic_store_n(&repl_tid, gettid(), __ATOMIC_RELAXED);
}

/* The main thread, once a second: a copy the CPU starves goes on at
 * normal priority. */
void repl_watchdog(void)
{
    struct sched_param sp = { .sched_priority = 0 };
    uint64_t last = __atomic_load_n(&cron_last_us, __ATOMIC_RELAXED);
    uint64_t now = util_mono_us();

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

/* --- starting a resync ------------------------------------------------------
 * The peer's RESUME says how much of our stream it has: if that is still
 * in the backlog, PSYNC and the rest of it; otherwise a full copy, sent
 * bucket slice by bucket slice from the cron and after each flush, while
 * less than SYNC_HIGH_WATER is queued.  Live writes go into the same
 * stream meanwhile; last writer wins makes the order irrelevant.
 */
/* When the running full copy last logged its progress (one at a time:
 * only the active link walks). */
static uint64_t progress_us;
#define PROGRESS_US (10 * 1000000ULL)

static void start_sync(struct link *l)
{
    uint64_t items = items_curr();
    uint64_t cutoff;
    uint32_t at;

    log_event("replication %s: full resync started, sending a full copy "
              "(%llu items; the peer's offset is not in the backlog)",
              l->addr, (unsigned long long)items);
    repl_note_sync(true);
    progress_us = util_mono_us();
    link_out_set_state(l, OUT_COPY);
    l->peer_acked_items = stream_open_copy(l->fd, l->tls,
                                           l->tx.data + l->tx_off,
                                           l->tx.len - l->tx_off, items);
    l->tx.len = l->tx_off = 0;
    l->walk_next = 0;
    l->walk_items = 0;
    l->walk_bytes = 0;
    l->walk_start_us = util_mono_us();
    copy_sched_update();
    /* A flush_all the peer may have missed while unlinked. */
    items_flush_state(&cutoff, &at);
    if (cutoff != 0) {
        send_line(l, "f %llu %u\r\n", (unsigned long long)cutoff, at);
    }
}

/* The peer still has our stream up to `from`: send it what followed,
 * from the backlog, then the live records.  Caller checked `from`. */
static void start_partial(struct link *l, uint64_t from, uint64_t records)
{
    char line[REC_LINE_MAX];
    uint64_t end;
    size_t n;

    /* PSYNC goes out first, from l->tx, then link_flush() sends the
     * backlog from `from` on, then the live stream. */
    n = repl_fmt_psync(line, from);
    rbuf_add(&l->tx, line, n);
    l->peer_acked_items = records;
    end = stream_open_catchup(l->fd, l->tls, from, records);
    REPL_COUNT(partial_syncs, 1);
    repl_note_sync(false);
    log_event("replication %s: partial resync started, %llu bytes from "
              "the backlog",
             l->addr, (unsigned long long)(end - from));
    link_out_set_state(l, OUT_CATCHUP);
}

bool walk_resume(struct link *l, const struct repl_resume *r)
{
    if (l->out_state != OUT_HANDSHAKE) {
        return false;
    }
    persist_note_peer_end(true, r->end);
    if (r->run == repl_run_id && stream_backlog_has(r->offset)) {
        start_partial(l, r->offset, r->records);
    } else {
        start_sync(l);
    }
    return true;
}

/* --- the walk ------------------------------------------------------------ */

/* One item of the table into l->tx: s, or d for a tombstone. */
/* One chunk of a chunked value into the copy's buffer. */
static bool rbuf_piece(void *arg, const char *p, size_t n)
{
    return rbuf_add(arg, p, n);
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
        n = repl_fmt_delete(hdr, 'd', ITEM_key(it), it->nkey, false,
                            it->version);
        if (!rbuf_add(&l->tx, hdr, n)) {
            return false;
        }
        l->walk_items++;
        l->walk_bytes += n;
        return true;
    }
    n = repl_fmt_store(hdr, it, 's');
    if (!rbuf_add(&l->tx, hdr, n) ||
        !item_value_pieces(it, it->nbytes, rbuf_piece, &l->tx)) {
        return false;
    }
    l->walk_items++;
    l->walk_bytes += n + it->nbytes;
    return true;
}

/* The last slice went out: SYNCED, and the copy's numbers. */
static void walk_done(struct link *l)
{
    uint64_t took = util_mono_us() - l->walk_start_us;

    stream_copy_done();
    char line[REC_LINE_MAX];

    send_ctl(l, line, repl_fmt_synced(line, l->walk_items));
    pthread_mutex_lock(&repl_stats_lock);
    repl_rs.full_syncs++;
    repl_rs.last_sync_us = took;
    repl_rs.last_sync_items = l->walk_items;
    repl_rs.last_sync_bytes = l->walk_bytes;
    pthread_mutex_unlock(&repl_stats_lock);
    log_event("replication %s: full resync done, full copy sent, %llu "
              "items in %llu ms",
              l->addr, (unsigned long long)l->walk_items,
              (unsigned long long)(took / 1000));
    /* After the counters: stats that show "linked" show them too. */
    link_out_set_state(l, OUT_LIVE);
    copy_sched_update();
}

void walk_step(struct link *l)
{
    while (l->out_state == OUT_COPY && stream_pending() < SYNC_HIGH_WATER) {
        uint64_t next = assoc_walk_buckets(l->walk_next, SYNC_SLICE, walk_cb,
                                           l);
        util_preempt_point(&repl_yield_us);
        if (l->tx.len > 0) {
            stream_queue_copy(&l->tx);
        }
        if (next == 0) {
            walk_done(l);
            break;
        }
        l->walk_next = next;
        if (util_mono_us() - progress_us >= PROGRESS_US) {
            progress_us = util_mono_us();
            log_event("replication %s: full resync in progress, %llu items "
                      "sent", l->addr, (unsigned long long)l->walk_items);
        }
        if (l->tx.cap > 4 * SYNC_HIGH_WATER) {
            rbuf_free(&l->tx);
        }
    }
}
