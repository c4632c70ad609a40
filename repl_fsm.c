/*
 * repl_fsm.c - names and legal transitions of the replication state
 * machines (repl_fsm.h).  Pure tables: the setters that change a state,
 * check it here and log it are link_*_set_state() in replication.c and
 * mode_set() in repl_stream.c.  t/check_repl_fsm.c tests every pair.
 */
#include "repl_fsm.h"

#define REPL_FSM_NAME(e, name) name,
static const char *const hs_names[] = { HS_STEPS(REPL_FSM_NAME) };
static const char *const out_names[] = { LINK_OUT_STATES(REPL_FSM_NAME) };
static const char *const in_names[] = { LINK_IN_STATES(REPL_FSM_NAME) };
static const char *const mode_names[] = { STREAM_MODES(REPL_FSM_NAME) };
static const char *const summary_names[] = { REPL_STATES(REPL_FSM_NAME) };
#undef REPL_FSM_NAME

_Static_assert(sizeof(hs_names) / sizeof(hs_names[0]) == HS_STEP_MAX,
               "a name per handshake step");
_Static_assert(sizeof(out_names) / sizeof(out_names[0]) == LINK_OUT_MAX,
               "a name per outbound state");
_Static_assert(sizeof(in_names) / sizeof(in_names[0]) == LINK_IN_MAX,
               "a name per inbound state");
_Static_assert(sizeof(mode_names) / sizeof(mode_names[0]) == STREAM_MODE_MAX,
               "a name per stream mode");
_Static_assert(sizeof(summary_names) / sizeof(summary_names[0]) ==
               REPL_MAX_STATE, "a name per link state");

const char *hs_step_name(enum hs_step s)
{
    return (unsigned)s < HS_STEP_MAX ? hs_names[s] : "invalid";
}

const char *link_out_name(enum link_out s)
{
    return (unsigned)s < LINK_OUT_MAX ? out_names[s] : "invalid";
}

const char *link_in_name(enum link_in s)
{
    return (unsigned)s < LINK_IN_MAX ? in_names[s] : "invalid";
}

const char *stream_mode_name(enum stream_mode s)
{
    return (unsigned)s < STREAM_MODE_MAX ? mode_names[s] : "invalid";
}

const char *repl_state_name(enum repl_state s)
{
    return (unsigned)s < REPL_MAX_STATE ? summary_names[s] : "invalid";
}

/*
 * Handshake:  WAIT_PAIR --PAIR--> WAIT_AUTH --AUTH checked--> WAIT_HELLO
 *             WAIT_HELLO --HELLO, the link kept--> DONE
 */
bool hs_step_legal(enum hs_step from, enum hs_step to)
{
    return (unsigned)from < HS_DONE && to == from + 1;
}

/*
 * Outbound:   HANDSHAKE --RESUME, offset not in our backlog--> COPY
 *             HANDSHAKE --RESUME, offset in our backlog------> CATCHUP
 *             COPY --last slice sent, SYNCED queued----------> LIVE
 *             CATCHUP --reached the backlog's live end-------> LIVE
 */
bool link_out_legal(enum link_out from, enum link_out to)
{
    switch (from) {
    case OUT_HANDSHAKE:
        return to == OUT_COPY || to == OUT_CATCHUP;
    case OUT_COPY:
    case OUT_CATCHUP:
        return to == OUT_LIVE;
    case OUT_LIVE:
    default:
        return false;
    }
}

/*
 * Inbound:    HANDSHAKE --HELLO checked, RESUME sent--> RESUMED
 *             RESUMED --SYNC--> COPY --SYNCED--> LIVE
 *             RESUMED --PSYNC-------------------> LIVE
 */
bool link_in_legal(enum link_in from, enum link_in to)
{
    switch (from) {
    case IN_HANDSHAKE:
        return to == IN_RESUMED;
    case IN_RESUMED:
        return to == IN_COPY || to == IN_LIVE;
    case IN_COPY:
        return to == IN_LIVE;
    case IN_LIVE:
    default:
        return false;
    }
}

/*
 * Stream:     OFF --copy--> COPY --walk done------------> QUEUED
 *             OFF --PSYNC-> CATCHUP --backlog sent------> QUEUED
 *             QUEUED --all sent, backlog big enough----> DIRECT
 *             any --the active link closes-------------> OFF
 */
bool stream_mode_legal(enum stream_mode from, enum stream_mode to)
{
    if (from == to || (unsigned)from >= STREAM_MODE_MAX ||
        (unsigned)to >= STREAM_MODE_MAX) {
        return false;
    }
    switch (to) {
    case STREAM_OFF:
        return true;
    case STREAM_COPY:
    case STREAM_CATCHUP:
        return from == STREAM_OFF;
    case STREAM_QUEUED:
        return from == STREAM_COPY || from == STREAM_CATCHUP;
    case STREAM_DIRECT:
    default:
        return from == STREAM_QUEUED;
    }
}

/*
 * Summary:    NONE --open--> HANDSHAKE --> SYNCING --> LINKED
 *             any open state --close--> NONE
 * CONNECTING is only what `stats replication` shows with no link.
 */
bool repl_state_legal(enum repl_state from, enum repl_state to)
{
    switch (from) {
    case REPL_NONE:
        return to == REPL_HANDSHAKE;
    case REPL_HANDSHAKE:
        return to == REPL_SYNCING || to == REPL_NONE;
    case REPL_SYNCING:
        return to == REPL_LINKED || to == REPL_NONE;
    case REPL_LINKED:
        return to == REPL_NONE;
    case REPL_CONNECTING:
    default:
        return false;
    }
}

enum repl_state link_summary(enum link_out out, enum link_in in)
{
    if (out == OUT_HANDSHAKE) {
        return REPL_HANDSHAKE;
    }
    if (out == OUT_COPY || in != IN_LIVE) {
        return REPL_SYNCING;
    }
    return REPL_LINKED;
}
