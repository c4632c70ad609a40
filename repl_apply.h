/*
 * repl_apply.h - applying what the peer sends once the handshake is
 * done: its records (last writer wins is items_apply.c's), the control lines
 * (PING, ACK, SYNC, PSYNC, SYNCED), and the checks that keep a peer's
 * clock from poisoning ours.  doc/replication.txt, "Versions from the peer".
 */
#ifndef REPL_APPLY_H
#define REPL_APPLY_H

#include <stdint.h>

struct link;

/* How much of the peer's stream this node has applied (replication
 * thread only): kept across links, lost with the process.  The offset
 * counts only once a full copy has completed (SYNCED). */
struct peer_applied {
    uint64_t run;               /* the peer run id it belongs to */
    uint64_t off;               /* its stream offset */
    uint64_t rec;               /* its records, counted like the offset */
};
extern struct peer_applied repl_applied;

/* Parse and apply one line or record at l->in_off: 1 when one was
 * consumed, 0 when more bytes are needed, -1 when the peer is refused
 * (l->fault, l->bad).  The buffer is only read: a record whose data has
 * not all arrived is parsed again. */
int apply_one(struct link *l);
/* Tell the peer what we applied. */
void apply_send_ack(struct link *l);
/* A sample of the peer's wall clock (HELLO, PING), in ms. */
void apply_note_skew(struct link *l, uint64_t peer_ms);
/* A flush cutoff made here (the hook) or accepted from the peer: the
 * peer's versions may run that far ahead.  Any thread. */
void repl_note_flush_cutoff(uint64_t cutoff);

#endif
