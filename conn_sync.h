/*
 * conn_sync.h - holding a client until the peer applied its write
 * (sync mode, repl_wait), released by the worker's timer (conn_sync.c).
 */
#ifndef CONN_SYNC_H
#define CONN_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* repl_wait: hold c until the peer applied its last write or timeout_ms
 * pass, then answer OK or TIMEOUT.  Returns false (nothing to wait for:
 * answer at once) when already applied or when there is no link. */
bool conn_repl_wait(struct conn *c, uint32_t timeout_ms);

/* Release connections whose synchronous writes were acknowledged or
 * timed out (w's thread). */
void conn_sync_check(struct worker *w);

#endif
