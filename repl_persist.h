/*
 * repl_persist.h - what replication keeps across a warm restart (-e):
 * the run id, node id, backlog and offsets in the memory file's
 * replication section, the start gate of a restored node, and how the
 * last start went.  doc/replication.txt, "Restarting a pair".
 */
#ifndef REPL_PERSIST_H
#define REPL_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct link;

/* How this process's start went (stats replication start_mode). */
enum start_mode {
    START_COLD,                 /* empty; no sync with the peer yet */
    START_WARM,                 /* restored from -e; not resynced yet */
    START_PARTIAL,              /* restored, then caught up from the
                                   peer's backlog */
    START_FULL                  /* took a full copy from the peer */
};
const char *start_mode_name(enum start_mode m);

/* restart.c, before any item is restored: NULL if the section (p, n;
 * NULL when the file has none) fits this node's -x, repl_port and
 * repl_tombstone_ttl for a file saved age seconds ago, else why not. */
const char *persist_check(const char *p, uint64_t n, uint64_t age);

/* repl_start: take the run id, node id, offsets and backlog back from a
 * restored memory file.  True if it did (the gate then waits for the
 * catch-up, see persist_hold_gate). */
bool persist_restore(void);
/* The memory file's replication section (restart_add_section). */
bool persist_save(struct rbuf *out);

/* The peer's RESUME said where its stream ended then. */
void persist_note_peer_end(bool known, uint64_t end);
/* PSYNC arrived: true if the client port must wait for the catch-up
 * (a restored node; persist_gate_check opens it). */
bool persist_hold_gate(void);
/* After records were applied: opens the port once caught up. */
void persist_gate_check(void);
/* SYNCED arrived: the first sync was a full copy. */
void persist_note_full(void);

/* Main thread, at a clean stop, after the workers stopped and before
 * repl_stop: wait up to ms for the peer to acknowledge our stream. */
void repl_drain(unsigned ms);

/* Lines of stats replication. */
void persist_stats(struct strbuf *sb);

#endif
