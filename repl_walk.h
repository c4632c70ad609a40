/*
 * repl_walk.h - sending the peer what it missed: RESUME answered with a
 * partial resync from the backlog or a full copy, the copy's walk, and
 * the CPU priority of the replication thread meanwhile.
 */
#ifndef REPL_WALK_H
#define REPL_WALK_H

#include <stdbool.h>
#include <stdint.h>

#define COPY_STARVED_MS 500     /* cron this late: copy at normal priority */

struct link;
struct repl_resume;

/* The peer's RESUME (parsed by repl_parse_resume): start a partial or a
 * full resync; false if it comes twice. */
bool walk_resume(struct link *l, const struct repl_resume *r);
/* Walk slices of the table into the stream while little is queued. */
void walk_step(struct link *l);
/* Call after a link starts or ends sending or receiving a copy, or
 * closes: the thread's scheduling class follows. */
void copy_sched_update(void);
/* Whether the replication thread runs at idle priority now (stats). */
bool copy_is_idle(void);
/* Main, after dropping privileges: warn once if full copies cannot run
 * at idle priority, with the cause. */
void copy_check_priority(void);
/* Copies moved back to normal priority (stats). */
uint64_t copy_starved_total(void);
/* The replication thread's timer ran (repl_cron); its id (repl_main). */
void copy_note_cron(uint64_t now_us);
void copy_note_thread(void);

#endif
