/*
 * conn_udp.c - serving the UDP port of -U: memcached's frame header, one
 * request datagram at a time through the same protocol handlers as TCP,
 * and the reply cut into framed datagrams.  Binding the sockets is
 * conn_listen.c's (conn_listen_udp); the commands are the protocol modules'.
 */
#include "memcached.h"
#include "conn_udp.h"
#include "conn.h"
#include "conn_reply.h"
#include "log.h"
#include "proto_bin.h"
#include "proto_meta.h"
#include "proto_text.h"
#include "replication.h"
#include "settings.h"
#include "stats.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The datagram being served: where the reply goes. */
struct udp_req {
    struct sockaddr_storage peer;   /* the sender */
    socklen_t peerlen;              /* its length */
    uint16_t request_id;            /* echoed in every reply datagram */
};

/* --- the frame -------------------------------------------------------------
 * Pure functions (t/check_udp.c).  memcached serves only requests of one
 * datagram (sequence number ignored, count 1) and ignores the reserved
 * field; so do we. */
enum udp_frame udp_frame_check(const unsigned char *buf, size_t len,
                               uint16_t *request_id)
{
    if (len <= UDP_HEADER_SIZE) {
        return UDP_FRAME_SHORT;
    }
    *request_id = (uint16_t)(buf[0] << 8 | buf[1]);
    if (buf[4] != 0 || buf[5] != 1) {
        return UDP_FRAME_MULTI;
    }
    return UDP_FRAME_OK;
}

void udp_frame_header(unsigned char *hdr, uint16_t request_id, uint16_t seq,
                      uint16_t total)
{
    hdr[0] = (unsigned char)(request_id >> 8);
    hdr[1] = (unsigned char)(request_id & 0xff);
    hdr[2] = (unsigned char)(seq >> 8);
    hdr[3] = (unsigned char)(seq & 0xff);
    hdr[4] = (unsigned char)(total >> 8);
    hdr[5] = (unsigned char)(total & 0xff);
    hdr[6] = 0;
    hdr[7] = 0;
}

unsigned udp_frame_count(size_t len)
{
    return (unsigned)((len + UDP_DATA_SIZE - 1) / UDP_DATA_SIZE);
}

/* --- the reply --------------------------------------------------------------
 * Everything the requests of one datagram queued is one message: each
 * datagram carries the header and the next UDP_DATA_SIZE bytes, copied
 * out of the reply's pieces.  A datagram the kernel refuses (a full send
 * buffer) ends the message: UDP may lose it anyway, and waiting would
 * stall the port for every other client. */
static size_t reply_bytes(const struct conn *c)
{
    size_t n = 0;
    int i;

    for (i = 0; i < c->iovused; i++) {
        n += c->iov[i].iov_len;
    }
    return n;
}

static void send_reply(struct conn *c)
{
    unsigned char dgram[UDP_HEADER_SIZE + UDP_DATA_SIZE];
    size_t total = reply_bytes(c), off = 0;
    unsigned seq, count;
    int idx = 0;

    if (total == 0) {
        return;
    }
    if (total > UDP_MAX_REPLY) {
        STAT_INCR(udp_replies_dropped);
        return;
    }
    count = udp_frame_count(total);
    for (seq = 0; seq < count; seq++) {
        size_t len = 0;
        ssize_t n;
        udp_frame_header(dgram, c->udp->request_id, (uint16_t)seq,
                         (uint16_t)count);
        while (len < UDP_DATA_SIZE && idx < c->iovused) {
            const struct iovec *v = &c->iov[idx];
            size_t take = v->iov_len - off;
            if (take > UDP_DATA_SIZE - len) {
                take = UDP_DATA_SIZE - len;
            }
            memcpy(dgram + UDP_HEADER_SIZE + len,
                   (const char *)v->iov_base + off, take);
            len += take;
            off += take;
            if (off == v->iov_len) {
                idx++;
                off = 0;
            }
        }
        do {
            n = sendto(c->sfd, dgram, UDP_HEADER_SIZE + len, 0,
                       (struct sockaddr *)&c->udp->peer, c->udp->peerlen);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            STAT_INCR(udp_replies_dropped);
            return;
        }
        STAT_ADD(bytes_written, (uint64_t)n);
    }
}

/* --- the requests -----------------------------------------------------------
 * A datagram holds whole requests: a value announced must be in it.  What
 * is cut short (a line without its end, a value or a binary packet
 * missing bytes) is dropped and counted as a bad frame; nothing carries
 * over to the next datagram, which may come from anyone. */

/* The value of a storage request, from the rest of the datagram. */
static bool take_value(struct conn *c)
{
    if (c->rbytes < c->nr.left) {
        item_remove(c->nr.it);
        c->nr.it = NULL;
        conn_set_state(c, CONN_READ);
        return false;
    }
    memcpy(c->nr.dst, c->rcurr, c->nr.left);
    c->rcurr += c->nr.left;
    c->rbytes -= c->nr.left;
    c->nr.left = 0;
    conn_set_state(c, CONN_READ);
    if (c->proto == CPROTO_BINARY) {
        proto_bin_complete_nread(c);
    } else if (c->nr.meta) {
        proto_meta_complete_nread(c);
    } else {
        proto_text_complete_nread(c);
    }
    return true;
}

/* A refused value, skipped in the datagram. */
static bool skip_value(struct conn *c)
{
    bool whole = c->rbytes >= c->sbytes;
    size_t k = whole ? c->sbytes : c->rbytes;

    c->rcurr += k;
    c->rbytes -= k;
    c->sbytes = 0;
    conn_set_state(c, CONN_READ);
    return whole;
}

/* The size of the reply so far, counted as it grows: a datagram of
 * thousands of keys must not cost a walk of the whole reply per key.
 * Only the last piece can still grow (add_iov extends it); a roll-back
 * (conn_out_rollback) below what was counted starts the count over. */
struct reply_count {
    int iovs;                   /* pieces summed in bytes, all but the
                                   last one queued */
    size_t bytes;               /* their bytes */
};

static size_t reply_count(const struct conn *c, struct reply_count *rc)
{
    if (rc->iovs >= c->iovused) {
        rc->iovs = 0;
        rc->bytes = 0;
        if (c->iovused == 0) {
            return 0;
        }
    }
    while (rc->iovs < c->iovused - 1) {
        rc->bytes += c->iov[rc->iovs++].iov_len;
    }
    return rc->bytes + c->iov[c->iovused - 1].iov_len;
}

/* Handle every request of the datagram in c->rcurr/c->rbytes.  Returns
 * false when one was cut short. */
static bool handle_requests(struct conn *c)
{
    struct reply_count rc = {0, 0};

    while (c->rbytes > 0) {
        enum proto_result r = c->proto == CPROTO_BINARY
                                  ? proto_bin_process(c)
                                  : proto_text_process(c);
        bool whole = true;

        if (c->state == CONN_NREAD) {
            whole = take_value(c);
        } else if (c->state == CONN_SWALLOW) {
            whole = skip_value(c);
        }
        if (!whole || r == PROTO_NEED_MORE) {
            return false;
        }
        if (r == PROTO_CLOSE && !c->close_after_write) {
            return false;       /* garbage TCP would hang up on: a bad
                                   magic byte, an endless line */
        }
        if (r == PROTO_CLOSE || c->close_after_write ||
            reply_count(c, &rc) > UDP_MAX_REPLY) {
            break;              /* quit, or a reply too large to send */
        }
    }
    return true;
}

static void serve(struct conn *c, size_t n)
{
    enum udp_frame f = udp_frame_check((unsigned char *)c->rbuf, n,
                                       &c->udp->request_id);

    STAT_INCR(udp_datagrams);
    if (f != UDP_FRAME_OK) {
        STAT_INCR(udp_bad_frames);
        return;
    }
    c->rcurr = c->rbuf + UDP_HEADER_SIZE;
    c->rbytes = n - UDP_HEADER_SIZE;
    /* As memcached: each datagram picks its protocol by its first byte. */
    c->proto = (unsigned char)c->rcurr[0] == BIN_REQ_MAGIC ? CPROTO_BINARY
                                                           : CPROTO_TEXT;
    c->get_rest_checked = false;
    if (!handle_requests(c)) {
        STAT_INCR(udp_bad_frames);
    }
    c->rbytes = 0;
    c->rcurr = c->rbuf;
    c->close_after_write = false;
    c->last_cmd_time = current_time;
    if (repl_dirty) {
        repl_worker_push();     /* the writes leave before the reply */
    }
    send_reply(c);
    conn_out_reset(c);
}

/* Up to -R datagrams per event, so that one busy UDP port does not keep
 * the worker from its other connections. */
static void udp_handler(evutil_socket_t fd, short which, void *arg)
{
    struct conn *c = arg;
    int i;

    (void)fd;
    (void)which;
    for (i = 0; i < settings.reqs_per_event; i++) {
        ssize_t n;
        c->udp->peerlen = sizeof(c->udp->peer);
        n = recvfrom(c->sfd, c->rbuf, c->rsize, 0,
                     (struct sockaddr *)&c->udp->peer, &c->udp->peerlen);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                log_info("<%d UDP read: %s", c->sfd, strerror(errno));
            }
            return;
        }
        STAT_ADD(bytes_read, (uint64_t)n);
        serve(c, (size_t)n);
    }
}

int conn_udp_adopt(struct conn *c)
{
    char *nb;

    c->udp = calloc(1, sizeof(*c->udp));
    nb = realloc(c->rbuf, UDP_READ_SIZE);
    if (c->udp == NULL || nb == NULL) {
        free(c->udp);
        c->udp = NULL;
        return -1;
    }
    c->rbuf = c->rcurr = nb;
    c->rsize = UDP_READ_SIZE;
    c->rbytes = 0;
    c->proto = CPROTO_TEXT;
    /* memcached shows an idle UDP socket by its own address. */
    snprintf(c->addr, sizeof(c->addr), "%s", c->listen_addr);
    if (event_del(c->ev) != 0 ||
        event_assign(c->ev, event_get_base(c->ev), c->sfd,
                     EV_READ | EV_PERSIST, udp_handler, c) != 0 ||
        event_add(c->ev, NULL) != 0) {
        return -1;
    }
    /* A UDP socket is not a client connection. */
    __atomic_sub_fetch(&gstats.curr_conns, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&gstats.total_conns, 1, __ATOMIC_RELAXED);
    return 0;
}

void conn_udp_release(struct conn *c)
{
    free(c->udp);
    c->udp = NULL;
}
