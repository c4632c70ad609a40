/*
 * conn_admin.h - starting and pacing the long replies of watch,
 * lru_crawler metadump and stats replication digest (conn_admin.c).
 */
#ifndef CONN_ADMIN_H
#define CONN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* Send pending watch lines of w's watcher connections (its thread). */
void conn_watch_wake(struct worker *w);

/* Answer `stats replication digest` a slice of the table per event-loop
 * turn, after the replies already queued; buffered requests follow. */
void conn_start_digest(struct conn *c);
/* Send `lru_crawler metadump <list>` a slice of the table at a time, each
 * once the client has read the last; false when `list` is bad. */
/* Replies of earlier requests are still queued, unsent (a pipeline):
 * metadump refuses to start behind them, as memcached does. */
bool conn_has_queued_replies(const struct conn *c);
bool conn_start_dump(struct conn *c, const char *list);

#endif
