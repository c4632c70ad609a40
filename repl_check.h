/*
 * repl_check.h - anti-entropy: the pair compares its digests on its own
 * while no records are in flight, and repairs a difference with a full
 * resync both ways.  doc/replication.txt, "Anti-entropy".
 */
#ifndef REPL_CHECK_H
#define REPL_CHECK_H

#include <stdint.h>

#include "util.h"

struct link;
struct repl_rec;

#define CHECK_EVERY_MS 5000     /* at least this long between checks */
#define CHECK_QUIET_MS 1000     /* no record either way for this long */

/* The replication thread's 100 ms timer: l is the active link (or NULL). */
void check_tick(struct link *l, uint64_t now_us);
/* DIGEST <sum> <items> <sender's records> <ours it applied>: 1, or -1
 * (refused). */
int check_on_digest(struct link *l, const struct repl_rec *r);
/* RESYNC: the peer found the digests different; -1: close the link. */
int check_on_resync(struct link *l);
/* stats replication: the check's counters. */
enum check_count_id {
    CHECK_COUNT_DONE,           /* digests compared here */
    CHECK_COUNT_MISMATCH,       /* ... and found different */
    CHECK_COUNT_REPAIR          /* resyncs made for it (both nodes) */
};
uint64_t check_count(enum check_count_id which);

#endif
