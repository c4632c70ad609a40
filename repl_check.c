/*
 * repl_check.c - anti-entropy: every few seconds while no record is in
 * flight either way, the pair compares its digests (items_digest.c) and, when
 * they differ, repairs the difference with a full resync both ways.  It
 * catches divergence from any cause, known or not.  Summing the table is
 * items_digest.c's; the link and the records are replication.c's and
 * repl_apply.c's.  Replication thread only.
 */
#include "repl_check.h"
#include "repl_apply.h"
#include "repl_codec.h"
#include "repl_link.h"
#include "repl_stream.h"
#include "items.h"
#include "items_digest.h"
#include "log.h"
#include "memcached.h"

#define CHECK_SLICE 4096        /* buckets summed per step */
#define CHECK_STEP_US 5000      /* at most this much walking per tick */
#define CHECK_CPU_SHARE 20      /* wait 20 times the walk: <= 5% of a CPU */
#define CHECK_HORIZON_S 10      /* items dying sooner are left out */
#define REPAIR_BACKOFF_MIN_MS 10000         /* after a first repair */
#define REPAIR_BACKOFF_MAX_MS (10 * 60 * 1000)

/*
 * One check, run by the node with the smaller run id (the other answers):
 *
 *   smaller run id                           larger run id
 *   IDLE --quiet 1 s, 5 s since the last-->  .
 *   SUMMING (its table, a slice per tick)    .
 *   IDLE    DIGEST sum items rec applied -->  COMPARING, if it has applied
 *                                             exactly rec of our records
 *                                             and we applied all of its
 *                                             (its table, slice per tick)
 *                                             IDLE: same, or different:
 *           <-- RESYNC                        forget the peer's offsets
 *   forget the peer's offsets, close          (both RESUME from nothing,
 *   the link                                   so both send a full copy)
 *
 * A record applied or fed on either node while a side sums abandons
 * that check (its digest would not describe the state compared).  Items
 * that expire (or a delayed flush_all kills) within CHECK_HORIZON_S of
 * the start are left out of both sums, which the DIGEST's <until> makes
 * the same; a sum that ends past <until> is dropped, so that an item
 * reclaimed on one node meanwhile cannot make the two differ.
 */
#define CHECK_STATES(X)                                                    \
    X(CHECK_IDLE, "idle")                                                  \
    X(CHECK_SUMMING, "summing")     /* ours, to send as DIGEST */          \
    X(CHECK_COMPARING, "comparing") /* ours, against the peer's DIGEST */

#define CHECK_ENUM(e, name) e,
enum check_state { CHECK_STATES(CHECK_ENUM) CHECK_STATE_MAX };

static enum check_state cstate;
static struct digest_walk walk;     /* the sum in progress */
static uint64_t busy_us;            /* time spent summing this check */
static uint64_t snap_fed;           /* our records fed, at the start */
static uint64_t snap_applied;       /* the peer's records applied, then */
static uint64_t peer_sum, peer_items;   /* its DIGEST (COMPARING) */
static uint32_t until;              /* the sums' horizon (unix time) */
static uint64_t seen_fed, seen_applied; /* at the last tick */
static uint64_t quiet_since_us;     /* records last moved */
static uint64_t next_check_us;      /* no check before this */
static uint64_t backoff_ms;         /* between repairs; 0: none yet */
static uint64_t next_repair_us;     /* no repair before this */
/* stats: atomics, read by workers */
static uint64_t checks_done, mismatches, repairs;

static const char *check_name(enum check_state s)
{
#define CHECK_NAME(e, name) name,
    static const char *const names[] = { CHECK_STATES(CHECK_NAME) };
#undef CHECK_NAME
    return s < CHECK_STATE_MAX ? names[s] : "?";
}

static void check_set_state(struct link *l, enum check_state s)
{
    if (s == cstate) {
        return;
    }
    log_debug("replication %s: digest check %s -> %s",
              l != NULL ? l->addr : "-", check_name(cstate), check_name(s));
    cstate = s;
}

static uint64_t records_fed(void)
{
    struct stream_stats ss;

    stream_stats(&ss);
    return ss.records;
}

static void begin_sum(struct link *l, enum check_state s, uint32_t t)
{
    items_digest_begin(&walk);
    walk.until = until = t;
    busy_us = 0;
    snap_fed = records_fed();
    snap_applied = repl_applied.rec;
    check_set_state(l, s);
}

/* Sum for up to CHECK_STEP_US: true when the digest is complete.  The
 * thread gives the CPU away between slices at most once a millisecond
 * (doc/threads.txt, "Yield points"): on a kernel that preempts lazily a
 * 5 ms step would otherwise hold a worker woken on this CPU until the
 * step ends. */
static bool sum_step(void)
{
    uint64_t t0 = util_mono_us(), t;
    bool done;

    do {
        done = items_digest_step(&walk, CHECK_SLICE);
        util_preempt_point(&repl_yield_us);
        t = util_mono_us();
    } while (!done && t - t0 < CHECK_STEP_US);
    busy_us += t - t0;
    return done;
}

/* The next check waits CHECK_EVERY_MS, and at least CHECK_CPU_SHARE
 * times the time this one spent summing. */
static void schedule_next(uint64_t now)
{
    uint64_t wait = (uint64_t)CHECK_EVERY_MS * 1000;

    if (busy_us * CHECK_CPU_SHARE > wait) {
        wait = busy_us * CHECK_CPU_SHARE;
    }
    next_check_us = now + wait;
}

/* Both nodes then RESUME from nothing: each sends a full copy. */
static void forget_peer_offsets(void)
{
    repl_applied.run = 0;
}

static void compare(struct link *l, uint64_t now)
{
    char line[REC_LINE_MAX];

    __atomic_add_fetch(&checks_done, 1, __ATOMIC_RELAXED);
    if (walk.sum == peer_sum && walk.count == peer_items) {
        backoff_ms = 0;
        log_debug("replication %s: digests agree (%llu items)", l->addr,
                  (unsigned long long)walk.count);
        return;
    }
    __atomic_add_fetch(&mismatches, 1, __ATOMIC_RELAXED);
    if (now < next_repair_us) {
        log_info("replication %s: the pair's digests still differ (this "
                 "node %llu items, the peer %llu); next repair in %llu s",
                 l->addr, (unsigned long long)walk.count,
                 (unsigned long long)peer_items,
                 (unsigned long long)((next_repair_us - now) / 1000000));
        return;
    }
    backoff_ms = backoff_ms == 0 ? REPAIR_BACKOFF_MIN_MS
                 : backoff_ms * 2 > REPAIR_BACKOFF_MAX_MS
                 ? REPAIR_BACKOFF_MAX_MS : backoff_ms * 2;
    next_repair_us = now + backoff_ms * 1000;
    __atomic_add_fetch(&repairs, 1, __ATOMIC_RELAXED);
    log_warn("replication %s: the pair's digests differ (this node "
             "%016llx, %llu items; the peer %016llx, %llu items): a full "
             "resync both ways repairs it", l->addr,
             (unsigned long long)walk.sum, (unsigned long long)walk.count,
             (unsigned long long)peer_sum, (unsigned long long)peer_items);
    forget_peer_offsets();
    send_ctl(l, line, repl_fmt_resync(line));
}

/* A sum is complete: send it (SUMMING) or compare it (COMPARING). */
static void sum_done(struct link *l, uint64_t now)
{
    enum check_state was = cstate;

    check_set_state(l, CHECK_IDLE);
    if (was == CHECK_SUMMING) {
        schedule_next(now);
    }
    if (current_time >= until) {
        log_debug("replication %s: the digest took too long; not used",
                  l->addr);
        return;
    }
    if (was == CHECK_SUMMING) {
        char line[REC_LINE_MAX];
        send_ctl(l, line, repl_fmt_digest(line, walk.sum, walk.count,
                                          snap_fed, snap_applied, until));
    } else {
        compare(l, now);
    }
}

void check_tick(struct link *l, uint64_t now)
{
    uint64_t fed, applied;

    if (l == NULL || l->state != REPL_LINKED) {
        check_set_state(l, CHECK_IDLE);
        quiet_since_us = now;
        return;
    }
    fed = records_fed();
    applied = repl_applied.rec;
    if (fed != seen_fed || applied != seen_applied) {
        seen_fed = fed;
        seen_applied = applied;
        quiet_since_us = now;
        check_set_state(l, CHECK_IDLE);     /* abandon a sum under way */
        return;
    }
    if (cstate == CHECK_IDLE) {
        /* The smaller run id starts; the peer has all of our records. */
        if (repl_run_id > l->peer_run_id || now < next_check_us ||
            now - quiet_since_us < (uint64_t)CHECK_QUIET_MS * 1000 ||
            l->peer_acked_items != fed) {
            return;
        }
        begin_sum(l, CHECK_SUMMING, current_time + CHECK_HORIZON_S);
    }
    if (sum_step()) {
        sum_done(l, util_mono_us());
    }
}

int check_on_digest(struct link *l, const struct repl_rec *r)
{
    /* Compare only the state the peer summed: every record of ours it
     * had applied then is all we fed, and we applied all it fed. */
    if (cstate != CHECK_IDLE || r->applied != records_fed() ||
        r->records != repl_applied.rec || r->at <= current_time) {
        log_debug("replication %s: a digest for another state; not "
                  "compared", l->addr);
        return 1;
    }
    peer_sum = r->sum;
    peer_items = r->items;
    begin_sum(l, CHECK_COMPARING, (uint32_t)r->at);
    return 1;
}

int check_on_resync(struct link *l)
{
    __atomic_add_fetch(&repairs, 1, __ATOMIC_RELAXED);
    forget_peer_offsets();
    check_set_state(l, CHECK_IDLE);
    return link_refuse(l, FAULT_RESYNC, "the pair's digests differ: a "
                       "full resync both ways");
}

uint64_t check_count(enum check_count_id which)
{
    switch (which) {
    case CHECK_COUNT_DONE:
        return __atomic_load_n(&checks_done, __ATOMIC_RELAXED);
    case CHECK_COUNT_MISMATCH:
        return __atomic_load_n(&mismatches, __ATOMIC_RELAXED);
    case CHECK_COUNT_REPAIR:
    default:
        return __atomic_load_n(&repairs, __ATOMIC_RELAXED);
    }
}
