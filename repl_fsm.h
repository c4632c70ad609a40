/*
 * repl_fsm.h - the replication state machines' states, their names and
 * which transitions are legal: one enum per direction of a link, one for
 * the outbound stream's mode, and the link summary `stats replication`
 * shows.  Pure: no I/O, no locks; the setters that log live with the
 * state (replication.c, repl_stream.c).  Drawn in doc/replication.txt.
 */
#ifndef REPL_FSM_H
#define REPL_FSM_H

#include <stdbool.h>

#include "replication.h"

/* The handshake, one step per line received (repl_link.h draws it). */
#define HS_STEPS(X)                                                       \
    X(HS_WAIT_PAIR, "wait-pair")    /* for the peer's PAIR line */          \
    X(HS_WAIT_AUTH, "wait-auth")    /* for its proof of the secret */       \
    X(HS_WAIT_HELLO, "wait-hello")  /* proven; for its HELLO */             \
    X(HS_DONE, "done")              /* passed the handshake, kept */

/* What this node sends on a link. */
#define LINK_OUT_STATES(X)                                                \
    X(OUT_HANDSHAKE, "handshake")   /* until the peer's RESUME is handled */ \
    X(OUT_COPY, "copy")             /* the full copy is being walked */     \
    X(OUT_CATCHUP, "catch-up")      /* our backlog from its RESUME offset */ \
    X(OUT_LIVE, "live")             /* live records only */

/* What this node receives on a link. */
#define LINK_IN_STATES(X)                                                 \
    X(IN_HANDSHAKE, "handshake")    /* until the handshake passes */        \
    X(IN_RESUMED, "resumed")        /* RESUME sent: SYNC or PSYNC next */   \
    X(IN_COPY, "copy")              /* SYNC received, SYNCED not yet */     \
    X(IN_LIVE, "live")              /* copy applied, or PSYNC: caught up */

/* How the outbound stream reaches the active link's socket. */
#define STREAM_MODES(X)                                                   \
    X(STREAM_OFF, "off")            /* no link: records go to the backlog */ \
    X(STREAM_COPY, "copy")          /* full copy: only the thread sends */  \
    X(STREAM_CATCHUP, "catch-up")   /* the thread sends the backlog; live  \
                                       records go to the backlog only */    \
    X(STREAM_QUEUED, "queued")      /* workers send what they queue */      \
    X(STREAM_DIRECT, "direct")      /* workers send from the backlog */

#define REPL_FSM_ENUM(e, name) e,
enum hs_step { HS_STEPS(REPL_FSM_ENUM) HS_STEP_MAX };
enum link_out { LINK_OUT_STATES(REPL_FSM_ENUM) LINK_OUT_MAX };
enum link_in { LINK_IN_STATES(REPL_FSM_ENUM) LINK_IN_MAX };
enum stream_mode { STREAM_MODES(REPL_FSM_ENUM) STREAM_MODE_MAX };
#undef REPL_FSM_ENUM

const char *hs_step_name(enum hs_step s);
const char *link_out_name(enum link_out s);
const char *link_in_name(enum link_in s);
const char *stream_mode_name(enum stream_mode s);

/* Whether from -> to is a transition the machine allows (a state never
 * moves to itself). */
bool hs_step_legal(enum hs_step from, enum hs_step to);
bool link_out_legal(enum link_out from, enum link_out to);
bool link_in_legal(enum link_in from, enum link_in to);
bool stream_mode_legal(enum stream_mode from, enum stream_mode to);
bool repl_state_legal(enum repl_state from, enum repl_state to);

/* The one word `stats replication` shows for an open link: handshake
 * until the peer's RESUME is handled, linked once both directions are
 * past their copy, syncing between. */
enum repl_state link_summary(enum link_out out, enum link_in in);

#endif
