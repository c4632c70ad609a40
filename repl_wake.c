/*
 * repl_wake.c - waking from a stall (SIGSTOP, a paused VM, a starved
 * machine): the workers hold every client request read after the wake
 * until the peer's stream is applied up to a PING it sent after the
 * wake, so none is answered from the copy the node had before.  Noticing
 * the stall (the timer's gap), the link and the gate are replication.c's.
 */
#include "memcached.h"
#include "repl_wake.h"
#include "log.h"
#include "settings.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#define WAIT_SLICE_MS 100       /* a held worker re-checks this often */

/*
 * Who sees what (tick_ms, state: wake_tick_ms, wake_state_now):
 *
 *   replication thread                    worker, per read(2)
 *   ------------------                    -------------------
 *   timer gap >= WAKE_STALL_MS:           t = tick_ms (acquire)
 *     state = HOLDING (or GATED)          s = state
 *   tick_ms = now (release)               RUNNING, rx_ms <= t + STALL and
 *   ...                                   turn_ms < rx_ms + STALL: serve
 *   PING sent after the hold began:       (the fast path); else wait
 *     state = RUNNING, broadcast          under mu for a tick at or after
 *                                         max(rx_ms, turn_ms), RUNNING;
 *                                         GATED: refuse
 *
 * Two signs that the process may just have woken, before its timer has
 * run: bytes that arrived more than WAKE_STALL_MS after the timer's last
 * tick (the timer has not run since), and bytes that waited that long in
 * the socket (rx_ms, the kernel's receive time, SO_TIMESTAMP, against
 * turn_ms, the time libevent read at the top of the worker's loop turn:
 * no clock read per request).  Either way the worker waits for a tick
 * after it, which has judged the gap.  A worker that waits blocks its
 * other clients too, which would be served from the same old copy.
 */
int wake_state_now;             /* enum wake_state; atomic */
uint64_t wake_tick_ms;          /* atomic: wall clock of the last tick */
static uint64_t hold_from_ms;   /* wall clock the hold began (repl thread) */
static uint64_t hold_until_us;  /* the longest it lasts (repl thread) */
static uint64_t serial;         /* stalls so far: PING w<serial> (repl) */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned waiters;        /* workers in wait_turn(); under mu */
static uint64_t holds;          /* atomic: stats replication stall_holds */
static uint64_t held;           /* atomic: requests that waited */
static uint64_t hold_timeouts;  /* atomic: holds ended by their limit */
static uint64_t last_hold_ms;   /* atomic: how long the last hold lasted */
static uint64_t abandoned;      /* atomic: reads dropped, client gone */
uint64_t wake_hold_end_ms;      /* atomic: wall clock the last hold ended */

#define WAKE_STATE_NAME(e, name) name,
static const char *const state_names[] = {WAKE_STATES(WAKE_STATE_NAME)};
#undef WAKE_STATE_NAME

const char *wake_state_name(enum wake_state s)
{
    return (unsigned)s < WAKE_MAX_STATE ? state_names[s] : "?";
}

enum wake_state wake_state(void)
{
    return (enum wake_state)__atomic_load_n(&wake_state_now, __ATOMIC_ACQUIRE);
}

void wake_set_state(enum wake_state s)
{
    enum wake_state old = wake_state();

    if (old == s) {
        return;
    }
    log_debug("replication: wake %s -> %s", wake_state_name(old),
              wake_state_name(s));
    pthread_mutex_lock(&mu);
    __atomic_store_n(&wake_state_now, (int)s, __ATOMIC_RELEASE);
    if (waiters > 0) {
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&mu);
}

/* The hold ends (repl thread): how long it lasted goes to stats. */
static uint64_t end_hold(void)
{
    uint64_t now = util_now_ms(), ms = now - hold_from_ms;

    __atomic_store_n(&last_hold_ms, ms, __ATOMIC_RELAXED);
    __atomic_store_n(&wake_hold_end_ms, now, __ATOMIC_RELEASE);
    wake_set_state(WAKE_RUNNING);
    return ms;
}

void wake_hold(uint64_t now_us)
{
    if (wake_state() == WAKE_GATED) {
        return;                 /* the closed port holds everything */
    }
    serial++;
    hold_from_ms = util_now_ms();
    hold_until_us = now_us + (uint64_t)settings.repl_timeout * 1000000;
    __atomic_add_fetch(&holds, 1, __ATOMIC_RELAXED);
    wake_set_state(WAKE_HOLDING);
}

void wake_gate(void)
{
    serial++;
    wake_set_state(WAKE_GATED);
}

uint64_t wake_serial(void)
{
    return serial;
}

void wake_tick(uint64_t now_ms, uint64_t now_us)
{
    if (wake_state() == WAKE_HOLDING && now_us >= hold_until_us) {
        __atomic_add_fetch(&hold_timeouts, 1, __ATOMIC_RELAXED);
        log_warn("replication: not caught up with the peer %d s after a "
                 "stall; serving client requests again",
                 settings.repl_timeout);
        end_hold();
    }
    pthread_mutex_lock(&mu);
    __atomic_store_n(&wake_tick_ms, now_ms, __ATOMIC_RELEASE);
    if (waiters > 0) {
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&mu);
}

void wake_on_ping(uint64_t peer_ms, int64_t skew_ms)
{
    if (wake_state() != WAKE_HOLDING ||
        (int64_t)peer_ms - skew_ms < (int64_t)hold_from_ms) {
        return;
    }
    log_event("replication: caught up with the peer after a stall "
              "(%llu ms); serving client requests again",
              (unsigned long long)end_hold());
}

void wake_unreachable(const char *why)
{
    if (wake_state() != WAKE_HOLDING) {
        return;
    }
    __atomic_add_fetch(&hold_timeouts, 1, __ATOMIC_RELAXED);
    log_warn("replication: the peer cannot be reached after a stall (%s, "
             "%llu ms); serving client requests from this node's copy", why,
             (unsigned long long)end_hold());
}

void wake_on_pong(uint64_t n)
{
    if (wake_state() != WAKE_HOLDING || n != serial) {
        return;
    }
    log_event("replication: caught up with the peer after a stall "
              "(%llu ms); serving client requests again",
              (unsigned long long)end_hold());
}

/* The worker's side, under mu: whether bytes seen at since (their
 * receive time or the worker's loop turn, the later) may be served now
 * (1), must be refused (-1), or must wait for a tick after it (0). */
static int verdict(uint64_t since)
{
    uint64_t t = __atomic_load_n(&wake_tick_ms, __ATOMIC_ACQUIRE);
    enum wake_state s = wake_state();

    if (s == WAKE_GATED) {
        return -1;
    }
    return s == WAKE_RUNNING && t >= since ? 1 : 0;
}

/* Wait for the timer's verdict and the hold's end, at most
 * repl_timeout + 1 s (a timer that does not run at all: serve). */
static int wait_turn(uint64_t since)
{
    uint64_t until = util_mono_us() +
                     ((uint64_t)settings.repl_timeout + 1) * 1000000;
    bool counted = false;
    int v;

    pthread_mutex_lock(&mu);
    waiters++;
    while ((v = verdict(since)) == 0 && util_mono_us() < until) {
        struct timespec ts;
        if (!counted) {
            __atomic_add_fetch(&held, 1, __ATOMIC_RELAXED);
            counted = true;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WAIT_SLICE_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cv, &mu, &ts);
    }
    waiters--;
    pthread_mutex_unlock(&mu);
    return v < 0 ? -1 : counted ? 1 : 0;
}

int wake_wait(uint64_t rx_ms, uint64_t turn_ms)
{
    if (__atomic_load_n(&wake_tick_ms, __ATOMIC_ACQUIRE) == 0) {
        return 0;               /* the timer has not started */
    }
    return wait_turn(rx_ms > turn_ms ? rx_ms : turn_ms);
}

uint64_t wake_holds(void)
{
    return __atomic_load_n(&holds, __ATOMIC_RELAXED);
}

uint64_t wake_held_requests(void)
{
    return __atomic_load_n(&held, __ATOMIC_RELAXED);
}

uint64_t wake_last_hold_ms(void)
{
    return __atomic_load_n(&last_hold_ms, __ATOMIC_RELAXED);
}

void wake_count_abandoned(void)
{
    __atomic_add_fetch(&abandoned, 1, __ATOMIC_RELAXED);
}

uint64_t wake_abandoned(void)
{
    return __atomic_load_n(&abandoned, __ATOMIC_RELAXED);
}

uint64_t wake_hold_timeouts(void)
{
    return __atomic_load_n(&hold_timeouts, __ATOMIC_RELAXED);
}
