/*
 * repl_health.h - the pair's health in plain `stats` (repl_* lines) and
 * the kind of the last resync.
 */
#ifndef REPL_HEALTH_H
#define REPL_HEALTH_H

#include "util.h"

#include <stdbool.h>

/* A resync started, in either direction: full copy or backlog catch-up.
 * Any thread. */
void repl_note_sync(bool full);

/* The repl_* lines of `stats`; nothing without -x. */
void repl_health_stats(struct strbuf *sb);

#endif
