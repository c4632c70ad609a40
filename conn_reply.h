/*
 * conn_reply.h - building a connection's reply (protocol modules):
 * queue text and item references, bounded per connection; conn_reply.c
 * sends them.
 */
#ifndef CONN_REPLY_H
#define CONN_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conn.h"

/*
 * What one connection's pending reply may hold before the connection
 * stops handling requests and sends it: item references (each pins an
 * item, and a reference count) and bytes of reply text.  A multi-get
 * naming more keys is served in parts (proto_text.c), pipelined requests
 * wait in the read buffer, and a client that does not read its replies
 * holds no more than this.
 */
#define CONN_MAX_HELD_ITEMS 512
#define CONN_MAX_REPLY_TEXT (256 * 1024)
/*
 * -o read_buf_mem_limit: as in memcached, each worker gets limit/threads
 * of connection memory in 16 KB units; one is the read buffer of the
 * connection being served, each other one holds CONN_RESP_PER_UNIT
 * pending responses (memcached's response objects: one per request and
 * one per key of a multi-get; at 1 MB over 32 threads a multi-get of 13
 * keys is served and one of 14 is not, on both servers).  A response that finds the worker's share
 * used up is refused: the connection answers SERVER_ERROR out of memory
 * (multi-get) or is closed (any other request), counted in
 * response_obj_oom.  Slots come back when the reply has been sent.
 */
#define CONN_RESP_UNIT 16384
#define CONN_RESP_PER_UNIT 13
bool conn_resp_take_slow(struct conn *c);
static inline bool conn_resp_take(struct conn *c)
{
    return __builtin_expect(settings.read_buf_mem_limit == 0, 1) ||
           conn_resp_take_slow(c);
}

static inline bool conn_out_full(const struct conn *c)
{
    return c->icount >= CONN_MAX_HELD_ITEMS ||
           c->wbytes >= CONN_MAX_REPLY_TEXT;
}

int conn_out_slow(struct conn *c, const char *s, size_t len);
/* Queue bytes to send (copied). Returns -1 when out of memory.  Inline
 * while they fit in the current text block and iov has a free slot (an
 * END or a STORED: a call, a memcpy call and add_iov cost ~70
 * instructions a get); else conn_out_slow, which grows either.  The
 * iov pieces come out as add_iov makes them. */
static inline int conn_out(struct conn *c, const char *s, size_t len)
{
    struct wblock *b = c->wlast;
    struct iovec *v;
    char *p;

    if (__builtin_expect(len == 0 || b->size - b->used < len ||
                         c->iovused == c->iovsize, 0)) {
        return conn_out_slow(c, s, len);
    }
    p = b->data + b->used;
    memcpy(p, s, len);
    b->used += len;
    if (c->iovused > c->iovdone) {
        v = &c->iov[c->iovused - 1];
        if ((char *)v->iov_base + v->iov_len == p) {
            v->iov_len += len;      /* contiguous, not sent yet: extend */
            return 0;
        }
    }
    v = &c->iov[c->iovused++];
    v->iov_base = p;
    v->iov_len = len;
    return 0;
}
#define conn_out_str(c, s) conn_out((c), (s), sizeof(s) - 1)
/* Reserve len bytes of text to fill in place; commit with conn_out_commit. */
char *conn_out_reserve(struct conn *c, size_t len);
void conn_out_commit(struct conn *c, size_t len);
/* Queue len bytes at p inside item it; takes over the caller's reference
 * to it (released when sent). */
int conn_out_item(struct conn *c, struct item *it, const char *p,
                  size_t len);
/* The same for a chunked item (p is then not its value). */
int conn_out_chunked(struct conn *c, struct item *it, size_t len);
/* Queue the first len bytes of it's value, flat or chunked; takes over
 * the caller's reference.  What the protocols call. */
static inline int conn_out_value(struct conn *c, struct item *it,
                                 size_t len)
{
    if (item_is_chunked(it)) {
        return conn_out_chunked(c, it, len);
    }
    return conn_out_item(c, it, ITEM_data(it), len);
}
/* Drop everything queued but not yet sent (noreply, errors mid-batch). */
void conn_out_reset(struct conn *c);

/* Close once everything queued is sent. */
void conn_close_after_write(struct conn *c);
/* quit: the same, logged as a normal close. */
void conn_quit(struct conn *c);

/* Remember what is queued now; drop everything queued after it (a
 * reply replaced after the fact: sync mode's NAK, a UDP request). */
void conn_out_mark(struct conn *c, struct out_mark *m);
void conn_out_rollback(struct conn *c, const struct out_mark *m);

#endif
