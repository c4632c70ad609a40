/*
 * replication.h - pair replication: the link to the peer, the stream of
 * mutations, full resync, reconnect, and the start-up gate that keeps the
 * client port closed until the first sync.  See doc/replication.txt.
 */
#ifndef REPLICATION_H
#define REPLICATION_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* The link as `stats replication` shows it (link_state); repl_fsm.h has
 * the two directions it sums up. */
#define REPL_STATES(X)                                                    \
    X(REPL_NONE, "none")            /* no -x, or a link slot not open */   \
    X(REPL_CONNECTING, "connecting") /* no link; dialling / waiting */     \
    X(REPL_HANDSHAKE, "handshake")  /* link up, proving identities */     \
    X(REPL_SYNCING, "syncing")      /* sending/receiving a copy or the     \
                                       backlog */                          \
    X(REPL_LINKED, "linked")        /* streaming live writes */

#define REPL_STATE_ENUM(e, name) e,
enum repl_state { REPL_STATES(REPL_STATE_ENUM) REPL_MAX_STATE };
#undef REPL_STATE_ENUM

const char *repl_state_name(enum repl_state s);

/* Parse -x and the repl_* options' values into settings; 0 or -1 with a
 * message.  Called after option parsing. */
int repl_configure(void);
/* Start the replication thread (listener, dialer, timers).  ready_fd is
 * written once the first sync is done (or timed out): the caller opens
 * the client port then. */
int repl_start(int ready_fd);
void repl_stop(void);
bool repl_enabled(void);

/* Set by the mutation hook when a worker queued records for the peer;
 * the worker then calls repl_worker_push() once its event is handled, so
 * that one send(2) carries all of that event's writes. */
extern __thread bool repl_dirty;
void repl_worker_push(void);

/* Synchronous writes (-o repl_sync=1).  repl_fed_off is set by the hook
 * to the stream offset just after the record a worker queued; the worker
 * then holds the client's reply until repl_acked_off() reaches it. */
extern __thread uint64_t repl_fed_off;
uint64_t repl_acked_off(void);
/* Whether the peer reported it could not store the write whose record
 * ends at stream offset off (NAK): repl_wait answers FAILED for it. */
bool repl_write_failed(uint64_t off);
bool repl_linked(void);
void repl_count_sync(bool timed_out, bool unlinked);
/* A synchronous write the peer acknowledged as not stored (NAK): its
 * client gets an error instead of the success reply. */
void repl_count_sync_failed(void);

/* "stats replication" lines. */
void repl_stats(struct strbuf *sb);
/* Called once a second from the main thread: moves a full copy that the
 * CPU starves back to normal priority (doc/replication.txt). */
void repl_watchdog(void);

#endif
