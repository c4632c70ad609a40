/*
 * repl_wake.h - a node waking from a stall: no client request read after
 * the wake is answered from the copy it had before (repl_wake.c).
 */
#ifndef REPL_WAKE_H
#define REPL_WAKE_H

#include <stdbool.h>
#include <stdint.h>

/* A gap this long in the replication timer is a stall: as long as a
 * client's timeout (pecl memcache: 1 s), so its client may have written
 * to the peer meanwhile (the late writes' threshold too, items.c). */
#define WAKE_STALL_MS 1000

#define WAKE_STATES(X)                                                    \
    X(WAKE_RUNNING, "running")  /* requests are served */                 \
    X(WAKE_HOLDING, "holding")  /* stalled: requests wait until the       \
                                   peer's stream has caught us up */      \
    X(WAKE_GATED, "gated")      /* stalled, -o repl_stall_gate=1: the     \
                                   client port is closed again */

#define WAKE_STATE_ENUM(e, name) e,
enum wake_state { WAKE_STATES(WAKE_STATE_ENUM) WAKE_MAX_STATE };
#undef WAKE_STATE_ENUM

const char *wake_state_name(enum wake_state s);

/* Replication thread.  The timer's tick, in this order: a stall found
 * (wake_hold() or wake_set_state(WAKE_GATED)) before wake_tick()
 * publishes the tick's wall clock, so a worker that sees the new tick
 * sees the new state.  wake_tick() also ends a hold that lasted
 * repl_timeout seconds (the peer may be gone). */
void wake_set_state(enum wake_state s);
void wake_hold(uint64_t now_us);
void wake_tick(uint64_t tick_ms, uint64_t now_us);
/* A PING the peer sent at its wall clock peer_ms (skew_ms: how far its
 * clock is ahead of ours) was applied on a live link: a hold ends when
 * the PING was sent after the stall began to be held. */
void wake_on_ping(uint64_t peer_ms, int64_t skew_ms);
/* The peer's PONG <n> was applied on a live link: everything it sent
 * before is applied, and a hold for stall n ends (one round trip after
 * the link is live).  wake_gate(): a stall that closes the client port.
 * wake_serial(): the latest stall's n, for PING w<n>. */
void wake_on_pong(uint64_t n);
/* A dial to the peer failed (refused, unreachable): a hold ends, since
 * this node's copy is the only one clients can have. */
void wake_unreachable(const char *why);
void wake_gate(void);
uint64_t wake_serial(void);
enum wake_state wake_state(void);

/* Any worker: may bytes that reached a client socket at unix ms rx_ms,
 * read in the loop turn that began at unix ms turn_ms, be served?  0:
 * yes, at once; 1: yes, after waiting for the timer's verdict or the
 * hold's end (they may have waited through a stall); -1: no, the client
 * port closed again (close the connection unanswered).  Inline: it runs
 * for every read of client bytes in a pair; the rest is in wake_wait().
 * wake_count_abandoned(): bytes that waited, whose client had closed
 * the connection meanwhile, were dropped (conn.c). */
extern int wake_state_now;      /* enum wake_state; atomic */
extern uint64_t wake_tick_ms;   /* atomic: wall clock of the last tick */
int wake_wait(uint64_t rx_ms, uint64_t turn_ms);

static inline int repl_wake_check(uint64_t rx_ms, uint64_t turn_ms)
{
    uint64_t t = __atomic_load_n(&wake_tick_ms, __ATOMIC_ACQUIRE);

    if (__builtin_expect(__atomic_load_n(&wake_state_now, __ATOMIC_RELAXED)
                         == WAKE_RUNNING && rx_ms <= t + WAKE_STALL_MS &&
                         turn_ms < rx_ms + WAKE_STALL_MS, 1)) {
        return 0;
    }
    return wake_wait(rx_ms, turn_ms);
}

/* Whether bytes that reached a client socket at unix ms rx_ms arrived
 * before the last hold ended: they may have waited through a stall even
 * when repl_wake_check() served them at once (see conn.c). */
extern uint64_t wake_hold_end_ms;       /* atomic */
static inline bool repl_wake_before_hold_end(uint64_t rx_ms)
{
    return rx_ms <= __atomic_load_n(&wake_hold_end_ms, __ATOMIC_ACQUIRE);
}

/* stats replication */
uint64_t wake_holds(void);
uint64_t wake_held_requests(void);
uint64_t wake_hold_timeouts(void);
void wake_count_abandoned(void);
uint64_t wake_abandoned(void);
uint64_t wake_last_hold_ms(void);

#endif
