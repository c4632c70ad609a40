/*
 * conn_internal.h - what the client connection's files (conn.c, conn_io.c,
 * conn_reply.c, conn_sync.c, conn_admin.c) share and nothing else sees:
 * I/O results, event registration, the send and release of a batch and
 * the hand-offs between the state machine and the special states.
 */
#ifndef CONN_INTERNAL_H
#define CONN_INTERNAL_H

#include <stdbool.h>

#include "conn.h"
#include "thread.h"

#define WBLOCK_SIZE 4096
/* Hash buckets per slice of `stats replication digest`: well under a
 * millisecond of the worker at about one item per bucket. */
#define DIGEST_SLICE 1024

enum io_result {
    IO_DONE,                    /* all done */
    IO_AGAIN,                   /* would block: wait for an event */
    IO_ERROR                    /* peer gone or fatal: close */
};

/* Give c's response slots back to its worker (reply sent or empty). */
static inline void resp_return(struct conn *c)
{
    if (c->nresp != 0) {
        c->thread->resp_left += c->nresp;
        c->nresp = 0;
    }
}

/* conn.c: (re)register c's event for flags; false on failure (close c). */
bool conn_update_event(struct conn *c, short flags);
/* conn.c: run c's state machine (which: the libevent flags, or 0). */
void conn_drive(struct conn *c, short which);
/* conn.c: one read into rbuf; *full when it filled the buffer. */
enum io_result conn_read_some(struct conn *c, bool *full);

/* conn_io.c: one step of a -Z connection's TLS handshake; true when it
 * is done and c reads on, false when c waits or was closed. */
bool conn_tls_handshake_step(struct conn *c);

/* conn_reply.c: send what is queued; release a sent batch; flush the
 * replies, returning false when the caller must stop. */
enum io_result conn_transmit(struct conn *c);
void conn_release_reply(struct conn *c);
bool conn_flush_replies(struct conn *c);

/* conn_sync.c: a write fed the stream in sync mode: hold c (true) or
 * not. */
bool conn_sync_hold(struct conn *c);

/* conn_admin.c: the CONN_WATCH, CONN_DUMP and CONN_DIGEST turns. */
void conn_drive_watch(struct conn *c, bool readable);
bool conn_dump_turn(struct conn *c);
void conn_digest_reply(struct conn *c);

#endif
