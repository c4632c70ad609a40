/*
 * conn_reply.c - the write path of a client connection: replies queued
 * as iovecs over text blocks and item references, sent with one
 * sendmsg() (conn_transmit), then released.  Protocol modules build
 * replies here (conn_reply.h); conn.c decides when to send them.
 */
#include "memcached.h"
#include "conn.h"
#include "conn_internal.h"
#include "conn_io.h"
#include "conn_reply.h"
#include "stats.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

bool conn_resp_take_slow(struct conn *c)
{
    if (c->thread == NULL || c->thread->resp_left <= 0) {
        STAT_INCR(response_obj_oom);
        return false;
    }
    c->thread->resp_left--;
    c->nresp++;
    return true;
}

/* Release every item reference and extra text block of a sent batch. */
void conn_release_reply(struct conn *c)
{
    struct wblock *b;
    int i;

    for (i = 0; i < c->icount; i++) {
        item_remove(c->ilist[i]);
    }
    c->icount = 0;
    resp_return(c);
    b = c->wfirst->next;
    while (b != NULL) {
        struct wblock *next = b->next;
        free(b);
        b = next;
    }
    c->wfirst->next = NULL;
    c->wfirst->used = 0;
    c->wlast = c->wfirst;
    c->wbytes = 0;
    c->iovused = c->iovdone = 0;
}

/* --- reply building ----------------------------------------------------- */

static int add_iov(struct conn *c, const void *base, size_t len)
{
    struct iovec *last;

    /* Extend the last piece when contiguous, unless it was already sent
     * (a partial flush while a value was being read). */
    if (c->iovused > c->iovdone) {
        last = &c->iov[c->iovused - 1];
        if ((const char *)last->iov_base + last->iov_len == base) {
            last->iov_len += len;
            return 0;
        }
    }
    if (c->iovused == c->iovsize) {
        int n = c->iovsize * 2;
        struct iovec *ni = realloc(c->iov, sizeof(*ni) * (size_t)n);
        if (ni == NULL) {
            return -1;
        }
        c->iov = ni;
        c->iovsize = n;
    }
    c->iov[c->iovused].iov_base = (void *)base;
    c->iov[c->iovused].iov_len = len;
    c->iovused++;
    return 0;
}

char *conn_out_reserve(struct conn *c, size_t len)
{
    struct wblock *b = c->wlast;

    if (b->size - b->used < len) {
        size_t size = len > WBLOCK_SIZE ? len : WBLOCK_SIZE;
        b = malloc(sizeof(*b) + size);
        if (b == NULL) {
            return NULL;
        }
        b->next = NULL;
        b->size = size;
        b->used = 0;
        c->wbytes += size;
        c->wlast->next = b;
        c->wlast = b;
    }
    return b->data + b->used;
}

void conn_out_commit(struct conn *c, size_t len)
{
    struct wblock *b = c->wlast;
    char *p = b->data + b->used;

    b->used += len;
    if (add_iov(c, p, len) != 0) {
        c->close_after_write = true;
    }
}

int conn_out_slow(struct conn *c, const char *s, size_t len)
{
    char *p;

    if (len == 0) {
        return 0;               /* sendmsg would make no progress on it */
    }
    p = conn_out_reserve(c, len);
    if (p == NULL) {
        c->close_after_write = true;
        return -1;
    }
    memcpy(p, s, len);
    conn_out_commit(c, len);
    return 0;
}

/* Keep a reference to it until its bytes are sent (c->ilist); on failure
 * it is released and the connection closes after its replies. */
static inline int hold_item(struct conn *c, struct item *it)
{
    if (c->icount == c->isize) {
        int n = c->isize * 2;
        struct item **nl = realloc(c->ilist, sizeof(*nl) * (size_t)n);
        if (nl == NULL) {
            item_remove(it);
            c->close_after_write = true;
            return -1;
        }
        c->ilist = nl;
        c->isize = n;
    }
    c->ilist[c->icount++] = it;
    return 0;
}

int conn_out_item(struct conn *c, struct item *it, const char *p,
                  size_t len)
{
    if (hold_item(c, it) != 0) {
        return -1;
    }
    if (add_iov(c, p, len) != 0) {
        c->close_after_write = true;
        return -1;
    }
    return 0;
}

/* A chunked value: one iovec per chunk (item_chunk.c).  Apart from
 * conn_out_item, and never through add_iov, so that the compiler still
 * inlines add_iov in conn_out_item and conn_out (bench: instructions per
 * get). */
int conn_out_chunked(struct conn *c, struct item *it, size_t len)
{
    if (hold_item(c, it) != 0) {
        return -1;
    }
    if (item_value_iovs(it, len, &c->iov, &c->iovused, &c->iovsize) != 0) {
        c->close_after_write = true;
        return -1;
    }
    return 0;
}

void conn_out_reset(struct conn *c)
{
    conn_release_reply(c);
}

void conn_close_after_write(struct conn *c)
{
    c->close_after_write = true;
}

void conn_quit(struct conn *c)
{
    c->close_after_write = true;
    c->close_reason = CLOSE_NORMAL;
}

/* Send queued replies.  Partially sent iovecs are trimmed in place. */
enum io_result conn_transmit(struct conn *c)
{
    while (c->iovdone < c->iovused) {
        ssize_t n;
        int cnt = c->iovused - c->iovdone;

        n = conn_sendv(c, &c->iov[c->iovdone], cnt > IOV_MAX ? IOV_MAX : cnt);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return IO_AGAIN;
            }
            return IO_ERROR;
        }
        STAT_ADD(bytes_written, (uint64_t)n);
        c->last_io_time = current_time;
        while (n > 0) {
            struct iovec *v = &c->iov[c->iovdone];
            if ((size_t)n >= v->iov_len) {
                n -= (ssize_t)v->iov_len;
                c->iovdone++;
            } else {
                v->iov_base = (char *)v->iov_base + n;
                v->iov_len -= (size_t)n;
                n = 0;
            }
        }
    }
    return IO_DONE;
}

/* Flush queued replies; returns false if the caller must stop. */
bool conn_flush_replies(struct conn *c)
{
    switch (conn_transmit(c)) {
    case IO_DONE:
        conn_release_reply(c);
        if (c->close_after_write) {
            conn_close(c);
            return false;
        }
        if (c->state == CONN_WRITE) {
            conn_set_state(c, CONN_READ);
        }
        return conn_update_event(c, EV_READ | EV_PERSIST) ||
               (conn_close(c), false);
    case IO_AGAIN:
        if (!conn_update_event(c, EV_WRITE | EV_PERSIST)) {
            conn_close(c);
            return false;
        }
        conn_set_state(c, CONN_WRITE);
        return false;
    case IO_ERROR:
    default:
        conn_close(c);
        return false;
    }
}

void conn_out_mark(struct conn *c, struct out_mark *m)
{
    m->iovused = c->iovused;
    m->icount = c->icount;
    m->wlast = c->wlast;
    m->wused = c->wlast->used;
    m->last_iov_len = c->iovused > 0 ? c->iov[c->iovused - 1].iov_len : 0;
}

void conn_out_rollback(struct conn *c, const struct out_mark *m)
{
    struct wblock *b;

    while (c->icount > m->icount) {
        item_remove(c->ilist[--c->icount]);
    }
    b = m->wlast->next;
    while (b != NULL) {
        struct wblock *next = b->next;
        c->wbytes -= b->size;
        free(b);
        b = next;
    }
    m->wlast->next = NULL;
    m->wlast->used = m->wused;
    c->wlast = m->wlast;
    c->iovused = m->iovused;
    if (c->iovused > 0) {
        c->iov[c->iovused - 1].iov_len = m->last_iov_len;
    }
}
