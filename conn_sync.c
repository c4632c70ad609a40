/*
 * conn_sync.c - a connection waiting for the peer: sync mode (-o
 * repl_sync) holds a write's reply until the peer applied it, and
 * repl_wait holds the client until then; conn_sync_check() releases them
 * on the ack or the timeout.  Replies held for the push are conn.c's.
 */
#include "memcached.h"
#include "conn.h"
#include "conn_internal.h"
#include "conn_reply.h"
#include "conn_sync.h"
#include "proto_bin.h"
#include "replication.h"
#include "settings.h"
#include "thread.h"
#include "util.h"

#include <event2/event.h>

/* While a connection waits for the peer it handles no event: pending
 * input (level-triggered EV_READ) or a -R yield's EV_WRITE would run its
 * handler on every loop turn for nothing, a worker at 100% CPU until the
 * ack or the timeout.  conn_sync_check() registers EV_READ again. */
static void enter_sync_wait(struct conn *c)
{
    conn_set_state(c, CONN_SYNC_WAIT);
    if (c->ev_flags != 0) {
        event_del(c->ev);
        c->ev_flags = 0;
    }
    worker_sync_waiter(c->thread, 1);
}

/* A request queued a replicated write in sync mode: hold its reply (and
 * everything after it) until the peer has applied it.  Returns false when
 * there is nothing to wait for. */
bool conn_repl_wait(struct conn *c, uint32_t timeout_ms)
{
    if (!repl_linked() || repl_acked_off() >= c->last_write_off ||
        c->thread == NULL) {
        return false;
    }
    c->sync_off = c->last_write_off;
    c->sync_deadline_us = util_mono_us() + (uint64_t)timeout_ms * 1000;
    c->wait_cmd = true;
    enter_sync_wait(c);
    return true;
}

bool conn_sync_hold(struct conn *c)
{
    uint64_t off = repl_fed_off;

    repl_fed_off = 0;
    if (!repl_linked()) {
        repl_count_sync(false, true);
        return false;
    }
    if (repl_acked_off() >= off || c->thread == NULL ||
        c->state != CONN_READ) {
        repl_count_sync(false, false);
        return false;
    }
    c->sync_off = off;
    c->sync_deadline_us = util_mono_us() +
                          (uint64_t)settings.repl_sync_timeout * 1000;
    /* No reply since the mark: the client asked not to hear of this
     * write (noreply, meta q), so it hears of no error either. */
    c->sync_quiet = c->proto != CPROTO_BINARY &&
                    c->iovused == c->sync_mark.iovused &&
                    c->wlast == c->sync_mark.wlast &&
                    c->wlast->used == c->sync_mark.wused &&
                    (c->iovused == 0 || c->iov[c->iovused - 1].iov_len ==
                                        c->sync_mark.last_iov_len);
    enter_sync_wait(c);
    return true;
}

/* The peer could not store the held write (NAK): its reply becomes an
 * error, so the client is never told a write the pair does not hold
 * succeeded.  The write stays applied here. */
static void sync_failed_reply(struct conn *c)
{
    static const char text[] = "SERVER_ERROR out of memory storing object "
                               "on the replication peer\r\n";

    repl_count_sync_failed();
    conn_out_rollback(c, &c->sync_mark);
    if (c->proto == CPROTO_BINARY) {
        proto_bin_peer_failed(c);
    } else if (!c->sync_quiet) {
        conn_out(c, text, sizeof(text) - 1);
    }
}

void conn_sync_check(struct worker *w)
{
    struct conn *c = w->conns;
    uint64_t acked = repl_acked_off();
    uint64_t now = util_mono_us();

    while (c != NULL) {
        struct conn *next = c->wnext;
        if (c->state == CONN_SYNC_WAIT &&
            (acked >= c->sync_off || now >= c->sync_deadline_us ||
             !repl_linked())) {
            if (c->wait_cmd) {
                c->wait_cmd = false;
                if (acked >= c->sync_off && repl_write_failed(c->sync_off)) {
                    conn_out_str(c, "FAILED\r\n");
                } else if (acked >= c->sync_off) {
                    conn_out_str(c, "OK\r\n");
                } else {
                    conn_out_str(c, "TIMEOUT\r\n");
                }
            } else if (acked >= c->sync_off &&
                       repl_write_failed(c->sync_off)) {
                sync_failed_reply(c);
            } else {
                repl_count_sync(acked < c->sync_off, false);
            }
            worker_sync_waiter(w, -1);
            conn_set_state(c, CONN_READ);
            c->last_cmd_time = current_time;
            if (!conn_update_event(c, EV_READ | EV_PERSIST)) {
                conn_close(c);
                c = next;
                continue;
            }
            /* Send the held replies, then go on with buffered requests
             * in whatever state they lead to. */
            if (c->iovused == 0 || conn_flush_replies(c)) {
                conn_drive(c, 0);
            }
        }
        c = next;
    }
}
