/*
 * conn.c - client connections: the libevent callback, the per-connection
 * state machine, read buffers, reply batching and sendmsg().  What a
 * request means is the protocol modules' business (proto_text.c); this
 * file only moves bytes.
 *
 *          +--------- value announced ---------+
 *          v                                   |
 *   CONN_NREAD / CONN_SWALLOW --done--> CONN_READ <----+
 *                                          |  ^        |
 *                           replies queued |  | sent   |
 *                                          v  |        |
 *                                       CONN_WRITE ----+ (EAGAIN: wait
 *                                          |              for EV_WRITE)
 *                                 quit/err v
 *                                     CONN_CLOSING -> CONN_CLOSED
 *
 * A worker reads once per readable event, handles every complete request
 * in the buffer, and sends all their replies with one sendmsg(): three
 * system calls per request when clients do not pipeline.
 */
#include "memcached.h"
#include "conn.h"
#include "conn_io.h"
#include "conn_udp.h"
#include "log.h"
#include "proto_bin.h"
#include "proto_meta.h"
#include "proto.h"
#include "proto_text.h"
#include "replication.h"
#include "sasl.h"
#include "settings.h"
#include "stats.h"
#include "thread.h"
#include "tls.h"
#include "watch.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_INITIAL 16384
#define WBLOCK_SIZE 4096
#define IOV_INITIAL 64
#define ILIST_INITIAL 32
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif
/* Hash buckets per slice of `stats replication digest`: well under a
 * millisecond of the worker at about one item per bucket. */
#define DIGEST_SLICE 1024

static struct conn **conns;     /* by fd; structures are reused */
static int conns_max;           /* slots in conns[] */

#define CONN_STATE_NAME(e, name) name,
static const char *const state_names[] = { CONN_STATES(CONN_STATE_NAME) };
#undef CONN_STATE_NAME
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) ==
               CONN_MAX_STATE, "a name for each enum conn_state");

const char *conn_state_name(enum conn_state s)
{
    return (unsigned)s < CONN_MAX_STATE ? state_names[s] : "invalid";
}

void conn_set_state(struct conn *c, enum conn_state s)
{
    if (c->state != s) {
        log_trace("<%d %s -> %s", c->sfd, conn_state_name(c->state),
                  conn_state_name(s));
        c->state = s;
    }
}

int conn_init(int maxfds)
{
    conns_max = maxfds;
    conns = calloc((size_t)maxfds, sizeof(*conns));
    return conns == NULL ? -1 : 0;
}

static void event_handler(evutil_socket_t fd, short which, void *arg);
static void rbuf_shrink(struct conn *c);

static bool update_event(struct conn *c, short flags)
{
    if (c->ev_flags == flags) {
        return true;
    }
    if (event_del(c->ev) != 0 ||
        event_assign(c->ev, event_get_base(c->ev), c->sfd, flags,
                     event_handler, c) != 0 ||
        event_add(c->ev, NULL) != 0) {
        return false;
    }
    c->ev_flags = flags;
    return true;
}

/* "tcp:1.2.3.4:5" or "tcp6:[::1]:5", as memcached labels an address;
 * "" for another family. */
static void addr_label(const struct sockaddr *sa, char *out, size_t n)
{
    char name[INET6_ADDRSTRLEN + 8];   /* "[" v6 "]:" port */
    int family = util_addr_name(sa, name, sizeof(name));

    if (family == AF_INET || family == AF_INET6) {
        snprintf(out, n, "%s%s", family == AF_INET ? "tcp:" : "tcp6:", name);
    } else if (n > 0) {
        out[0] = '\0';
    }
}

static void peer_name(struct conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    c->addr[0] = '\0';
    if (c->transport != CT_TCP ||
        getpeername(c->sfd, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    addr_label((struct sockaddr *)&ss, c->addr, sizeof(c->addr));
}

/* Allocate the buffers of a fresh structure. */
static int conn_alloc_buffers(struct conn *c)
{
    c->rsize = RBUF_INITIAL;
    c->rbuf = malloc(c->rsize);
    c->iovsize = IOV_INITIAL;
    c->iov = malloc(sizeof(*c->iov) * (size_t)c->iovsize);
    c->isize = ILIST_INITIAL;
    c->ilist = malloc(sizeof(*c->ilist) * (size_t)c->isize);
    c->wfirst = malloc(sizeof(struct wblock) + WBLOCK_SIZE);
    if (c->rbuf == NULL || c->iov == NULL || c->ilist == NULL ||
        c->wfirst == NULL) {
        return -1;
    }
    c->wfirst->next = NULL;
    c->wfirst->size = WBLOCK_SIZE;
    c->wfirst->used = 0;
    c->wlast = c->wfirst;
    return 0;
}

struct conn *conn_new(int sfd, enum conn_state state, struct worker *w,
                      struct event_base *base)
{
    struct conn *c;

    if (sfd < 0 || sfd >= conns_max) {
        return NULL;
    }
    c = conns[sfd];
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL || conn_alloc_buffers(c) != 0 ||
            (c->ev = event_new(base, sfd, EV_READ | EV_PERSIST,
                               event_handler, c)) == NULL) {
            /* Partial structures are leaked only if malloc keeps failing;
             * release what we have. */
            if (c != NULL) {
                free(c->rbuf);
                free(c->iov);
                free(c->ilist);
                free(c->wfirst);
                free(c);
            }
            __atomic_add_fetch(&gstats.malloc_fails, 1, __ATOMIC_RELAXED);
            return NULL;
        }
        __atomic_add_fetch(&gstats.conn_structs, 1, __ATOMIC_RELAXED);
        conns[sfd] = c;
    } else if (event_assign(c->ev, base, sfd, EV_READ | EV_PERSIST,
                            event_handler, c) != 0) {
        return NULL;
    }
    c->sfd = sfd;
    c->thread = w;
    c->proto = CPROTO_NEGOTIATE;
    c->authenticated = false;
    c->sasl_step = false;
    c->sasl = NULL;
    c->last_write_off = 0;
    c->origin.rx_ms = 0;
    c->origin.next_late = 0;
    c->wait_cmd = false;
    c->monitor = false;
    c->rcurr = c->rbuf;
    c->rbytes = 0;
    c->iovused = c->iovdone = 0;
    c->icount = 0;
    c->nresp = 0;
    c->nr.it = NULL;
    c->sbytes = 0;
    c->close_after_write = false;
    c->get_rest_checked = false;
    c->noreply = false;
    c->watch_flags = 0;
    c->last_cmd_time = c->last_io_time = current_time;
    c->transport = CT_TCP;
    c->udp = NULL;
    c->close_reason = CLOSE_ERROR;
    c->tls_port = false;
    c->tls = NULL;
    c->listen_addr[0] = '\0';
    c->ev_flags = EV_READ | EV_PERSIST;
    if (event_add(c->ev, NULL) != 0) {
        return NULL;
    }
    c->state = state;
    peer_name(c);
    if (w != NULL) {
        c->wprev = NULL;
        c->wnext = w->conns;
        if (w->conns != NULL) {
            w->conns->wprev = c;
        }
        w->conns = c;
        __atomic_add_fetch(&gstats.curr_conns, 1, __ATOMIC_RELAXED);
    }
    __atomic_add_fetch(&gstats.total_conns, 1, __ATOMIC_RELAXED);
    log_debug("<%d new connection %s", sfd, c->addr);
    return c;
}

/* Give c's response slots back to its worker (reply sent or empty). */
static inline void resp_return(struct conn *c)
{
    if (c->nresp != 0) {
        c->thread->resp_left += c->nresp;
        c->nresp = 0;
    }
}

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
static void release_reply(struct conn *c)
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

/* --- replies held for the replication push ------------------------------
 * A worker feeds its replicated writes to the link once per loop pass,
 * after every connection that was ready (repl_push_cb), so that one
 * send(2) carries them all.  A reply to a request that fed the stream
 * waits for that push: in the steady state the write is in the link's
 * socket before its client hears STORED, so a crash of this process
 * right after the reply normally leaves the write on its way to the peer
 * (doc/replication.txt, "Guarantees").  Any pending record holds the
 * reply, whichever connection fed it; the wait ends within the same
 * pass. */
static void unhold(struct conn *c)
{
    struct conn **pp = &c->thread->held;

    while (*pp != NULL && *pp != c) {
        pp = &(*pp)->hnext;
    }
    if (*pp == c) {
        *pp = c->hnext;
    }
    c->hnext = NULL;
    c->held = false;
}

/* Returns true when c's replies must wait for the push (now queued). */
static bool hold_replies(struct conn *c)
{
    if (c->held) {
        return true;
    }
    if (!repl_dirty || c->thread == NULL) {
        return false;
    }
    c->held = true;
    c->hnext = c->thread->held;
    c->thread->held = c;
    worker_repl_schedule(c->thread);
    return true;
}

void conn_close(struct conn *c)
{
    struct worker *w = c->thread;

    log_debug("<%d connection closed", c->sfd);
    if ((watch_mask & WATCH_CONNEVENTS) && w != NULL && c->udp == NULL) {
        watch_conn_event(false, c->sfd, c->transport, c->close_reason);
    }
    if (c->state == CONN_WATCH) {
        watch_remove(c);
    }
    if (c->state == CONN_SYNC_WAIT && w != NULL) {
        worker_sync_waiter(w, -1);
    }
    if (c->held) {
        unhold(c);
    }
    event_del(c->ev);
    release_reply(c);
    if (c->nr.it != NULL) {
        item_remove(c->nr.it);
        c->nr.it = NULL;
    }
    free(c->nr.token);
    c->nr.token = NULL;
    if (c->sasl != NULL) {
        sasl_conn_free(&c->sasl);
    }
    if (c->tls != NULL) {
        tls_free(c->tls);       /* close_notify goes before close(2) */
        c->tls = NULL;
    }
    c->rbytes = 0;              /* the next connection starts empty */
    rbuf_shrink(c);
    if (w != NULL) {
        if (c->wprev != NULL) {
            c->wprev->wnext = c->wnext;
        } else {
            w->conns = c->wnext;
        }
        if (c->wnext != NULL) {
            c->wnext->wprev = c->wprev;
        }
        c->wnext = c->wprev = NULL;
        if (c->udp == NULL) {
            __atomic_sub_fetch(&gstats.curr_conns, 1, __ATOMIC_RELAXED);
        }
    }
    conn_udp_release(c);
    conn_set_state(c, CONN_CLOSED);
    /* Inside the event handler the descriptor is released only when the
     * handler returns: until then its number cannot be handed to another
     * worker, which would reuse this structure under our feet. */
    if (c->in_handler) {
        c->close_fd = true;
    } else {
        close(c->sfd);
    }
}

void conn_close_all(struct worker *w)
{
    while (w->conns != NULL) {
        w->conns->close_reason = CLOSE_SHUTDOWN;
        conn_close(w->conns);
    }
}

void conn_close_clients(struct worker *w)
{
    struct conn *c = w->conns;

    while (c != NULL) {
        struct conn *next = c->wnext;
        if (!c->monitor) {
            conn_close(c);
        }
        c = next;
    }
}

/*
 * idle_timeout: a connection waiting for a request closes after that long
 * without one, as in memcached.  So does one stuck half way: in the
 * middle of a value (NREAD, SWALLOW), or with replies the client does not
 * read (WRITE, a dump), when no byte has moved either way for that long;
 * memcached leaves those open for ever.  Watchers and connections waiting
 * for the peer (SYNC_WAIT, bounded by its own timeout) are left alone.
 */
static bool stuck(const struct conn *c, uint32_t limit)
{
    uint32_t last = c->last_io_time > c->last_cmd_time ? c->last_io_time
                                                       : c->last_cmd_time;

    if (limit == 0 || c->udp != NULL) {
        return false;           /* no idle_timeout; the UDP port */
    }
    switch (c->state) {
    case CONN_READ:
        if (c->iovused == 0) {
            return current_time - c->last_cmd_time > limit;
        }
        return current_time - last > limit;
    case CONN_NREAD:
    case CONN_SWALLOW:
    case CONN_WRITE:
    case CONN_DUMP:
        return current_time - last > limit;
    default:
        return false;
    }
}

/* A TLS handshake gets this long, or idle_timeout if that is shorter. */
#define TLS_HANDSHAKE_SECS 10

static bool handshake_late(const struct conn *c)
{
    uint32_t limit = TLS_HANDSHAKE_SECS;

    if (settings.idle_timeout > 0 &&
        (uint32_t)settings.idle_timeout < limit) {
        limit = (uint32_t)settings.idle_timeout;
    }
    return c->state == CONN_HANDSHAKE &&
           current_time - c->last_cmd_time > limit;
}

void conn_close_idle(struct worker *w)
{
    struct conn *c = w->conns;

    while (c != NULL) {
        struct conn *next = c->wnext;
        if (handshake_late(c)) {
            log_info("<%d %s: TLS handshake timed out", c->sfd, c->addr);
            tls_server_count_handshake_error();
            conn_close(c);
        } else if (stuck(c, (uint32_t)settings.idle_timeout)) {
            log_debug("<%d closing idle connection (%s)", c->sfd,
                     conn_state_name(c->state));
            __atomic_add_fetch(&gstats.idle_kicks, 1, __ATOMIC_RELAXED);
            c->close_reason = CLOSE_IDLE_TIMEOUT;
            conn_close(c);
        }
        c = next;
    }
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

int conn_out(struct conn *c, const char *s, size_t len)
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

/* A chunked value: one iovec per chunk (item_chunk.c).  Apart from
 * conn_out_item, and never through add_iov, so that the compiler still
 * inlines add_iov in conn_out_item and conn_out (bench: instructions per
 * get). */
int conn_out_chunked(struct conn *c, struct item *it, size_t len)
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
    if (item_value_iovs(it, len, &c->iov, &c->iovused, &c->iovsize) != 0) {
        c->close_after_write = true;
        return -1;
    }
    return 0;
}

int conn_out_item(struct conn *c, struct item *it, const char *p,
                  size_t len)
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
    if (add_iov(c, p, len) != 0) {
        c->close_after_write = true;
        return -1;
    }
    return 0;
}

void conn_out_reset(struct conn *c)
{
    release_reply(c);
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

void conn_start_nread(struct conn *c, struct item *it, enum store_mode mode,
                      uint64_t cas, bool noreply)
{
    c->nr.it = it;
    item_cursor_start(&c->nr.vc, it, &c->nr.dst);
    c->nr.left = it->nbytes;
    c->nr.mode = mode;
    c->nr.cas = cas;
    c->nr.noreply = noreply;
    c->nr.meta = false;
    c->nr.auth = false;
    conn_set_state(c, CONN_NREAD);
}

int conn_start_auth_read(struct conn *c, size_t n)
{
    c->nr.token = malloc(n);
    if (c->nr.token == NULL) {
        return -1;
    }
    c->nr.it = NULL;
    c->nr.dst = c->nr.token;
    c->nr.vc.ch = NULL;
    c->nr.left = n;
    c->nr.noreply = false;
    c->nr.meta = false;
    c->nr.auth = true;
    conn_set_state(c, CONN_NREAD);
    return 0;
}

void conn_start_swallow(struct conn *c, size_t n)
{
    c->sbytes = n;
    conn_set_state(c, CONN_SWALLOW);
}

/* --- I/O ------------------------------------------------------------------ */

enum io_result {
    IO_DONE,                    /* all done */
    IO_AGAIN,                   /* would block: wait for an event */
    IO_ERROR                    /* peer gone or fatal: close */
};

/* Send queued replies.  Partially sent iovecs are trimmed in place. */
static enum io_result transmit(struct conn *c)
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

/* Make room at the end of rbuf: compact, and grow when full. */
static bool rbuf_make_room(struct conn *c)
{
    if (c->rcurr != c->rbuf) {
        if (c->rbytes > 0) {
            memmove(c->rbuf, c->rcurr, c->rbytes);
        }
        c->rcurr = c->rbuf;
    }
    if (c->rbytes == c->rsize) {
        size_t n = c->rsize * 2;
        char *nb;
        if (n > TEXT_GETLINE_MAX * 2) {
            return false;
        }
        nb = realloc(c->rbuf, n);
        if (nb == NULL) {
            return false;
        }
        c->rbuf = c->rcurr = nb;
        c->rsize = n;
    }
    return true;
}

/* After a long line (a multi-get of up to 1 MB) the buffer goes back to
 * its usual size once what is left fits, so that an idle connection does
 * not keep megabytes. */
static void rbuf_shrink(struct conn *c)
{
    char *nb;

    if (c->rsize <= RBUF_INITIAL || c->rbytes > RBUF_INITIAL / 2) {
        return;
    }
    if (c->rbytes > 0 && c->rcurr != c->rbuf) {
        memmove(c->rbuf, c->rcurr, c->rbytes);
    }
    nb = realloc(c->rbuf, RBUF_INITIAL);
    if (nb != NULL) {
        c->rbuf = nb;
        c->rsize = RBUF_INITIAL;
    }
    c->rcurr = c->rbuf;
}

/* Client sockets carry the kernel's receive time (SO_TIMESTAMP, set on
 * the listeners and inherited by accepted sockets) when the node is in a
 * pair: a write that waited in the kernel is versioned by it (items.c,
 * "late writes").  recvmsg(2) gives the time of the last segment read. */
static bool rx_stamps;

void conn_enable_rx_stamps(void)
{
    rx_stamps = true;
}

static ssize_t read_stamped(struct conn *c, void *buf, size_t len)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct timeval))];
        struct cmsghdr align;
    } cb;
    struct iovec iov = {buf, len};
    struct msghdr mh;
    struct cmsghdr *cm;
    struct timeval tv;
    ssize_t n;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cb.buf;
    mh.msg_controllen = sizeof(cb.buf);
    n = recvmsg(c->sfd, &mh, 0);
    if (n <= 0) {
        return n;
    }
    cm = CMSG_FIRSTHDR(&mh);
    if (cm != NULL && cm->cmsg_level == SOL_SOCKET &&
        cm->cmsg_type == SCM_TIMESTAMP) {
        memcpy(&tv, CMSG_DATA(cm), sizeof(tv));
        c->origin.rx_ms = (uint64_t)tv.tv_sec * 1000 +
                          (uint64_t)tv.tv_usec / 1000;
        if (!c->monitor && repl_stall_unnoticed(c->origin.rx_ms)) {
            /* Not served from a copy that may be stale. */
            errno = ECONNABORTED;
            return -1;
        }
    } else {
        c->origin.rx_ms = 0;
    }
    return n;
}

/* One read(2) into rbuf.  *full tells whether it filled the space, in
 * which case more may be waiting. */
static enum io_result read_some(struct conn *c, bool *full)
{
    size_t room;
    ssize_t n;

    if (!rbuf_make_room(c)) {
        return IO_ERROR;
    }
    room = c->rsize - c->rbytes;
    for (;;) {
        n = rx_stamps && c->tls == NULL
            ? read_stamped(c, c->rbuf + c->rbytes, room)
            : conn_recv(c, c->rbuf + c->rbytes, room);
        if (n > 0) {
            c->rbytes += (size_t)n;
            *full = (size_t)n == room;
            STAT_ADD(bytes_read, (uint64_t)n);
            return IO_DONE;
        }
        if (n == 0) {
            c->close_reason = CLOSE_NORMAL;
            return IO_ERROR;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return IO_AGAIN;
        }
        return IO_ERROR;
    }
}

/* Feed buffered bytes, then the socket, into the value being read. */
static enum io_result fill_nread(struct conn *c)
{
    while (c->nr.left > 0) {
        ssize_t n;
        /* A chunked value goes one chunk at a time. */
        size_t room = item_cursor_room(&c->nr.vc, &c->nr.dst, c->nr.left);
        if (c->rbytes > 0) {
            size_t k = c->rbytes < room ? c->rbytes : room;
            memcpy(c->nr.dst, c->rcurr, k);
            item_cursor_advance(&c->nr.vc, &c->nr.dst, k);
            c->nr.left -= k;
            c->rcurr += k;
            c->rbytes -= k;
            continue;
        }
        n = conn_recv(c, c->nr.dst, room);
        if (n > 0) {
            c->last_io_time = current_time;
            item_cursor_advance(&c->nr.vc, &c->nr.dst, (size_t)n);
            c->nr.left -= (size_t)n;
            STAT_ADD(bytes_read, (uint64_t)n);
        } else if (n == 0) {
            c->close_reason = CLOSE_NORMAL;
            return IO_ERROR;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return IO_AGAIN;
        } else {
            return IO_ERROR;
        }
    }
    return IO_DONE;
}

static enum io_result do_swallow(struct conn *c)
{
    char junk[8192];

    while (c->sbytes > 0) {
        ssize_t n;
        if (c->rbytes > 0) {
            size_t k = c->rbytes < c->sbytes ? c->rbytes : c->sbytes;
            c->rcurr += k;
            c->rbytes -= k;
            c->sbytes -= k;
            continue;
        }
        n = conn_recv(c, junk,
                 c->sbytes < sizeof(junk) ? c->sbytes : sizeof(junk));
        if (n > 0) {
            c->last_io_time = current_time;
            c->sbytes -= (size_t)n;
            STAT_ADD(bytes_read, (uint64_t)n);
        } else if (n == 0) {
            c->close_reason = CLOSE_NORMAL;
            return IO_ERROR;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return IO_AGAIN;
        } else {
            return IO_ERROR;
        }
    }
    return IO_DONE;
}

/* Pick the protocol from the first byte, as -B allows. */
static void negotiate(struct conn *c)
{
    bool binary = (unsigned char)c->rcurr[0] == BIN_REQ_MAGIC;

    switch (settings.binding_protocol) {
    case PROTO_ASCII:
        c->proto = CPROTO_TEXT;
        break;
    case PROTO_BINARY:
        c->proto = CPROTO_BINARY;   /* a text request fails the magic */
        break;
    default:
        c->proto = binary ? CPROTO_BINARY : CPROTO_TEXT;
        break;
    }
}

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

static bool sync_hold(struct conn *c)
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

/*
 * Handle buffered requests.  Returns false when the connection was closed
 * or must wait (state already set), true to keep driving.
 */
static enum proto_result parse_requests(struct conn *c, int *handled)
{
    enum proto_result r = PROTO_NEED_MORE;
    bool limited = __builtin_expect(settings.read_buf_mem_limit != 0, 0);

    while (c->state == CONN_READ && c->rbytes > 0) {
        if (*handled >= settings.reqs_per_event) {
            STAT_INCR(conn_yields);
            return PROTO_DONE;
        }
        if (conn_out_full(c)) {
            return PROTO_DONE;  /* send before reading on, as for -R */
        }
        if (c->proto == CPROTO_NEGOTIATE) {
            negotiate(c);
        }
        if (limited && !conn_resp_take_slow(c)) {
            conn_out_reset(c);  /* closed at once, nothing sent: memcached */
            return PROTO_CLOSE;
        }
        repl_fed_off = 0;
        if (settings.repl_sync) {
            conn_out_mark(c, &c->sync_mark);
        }
        r = c->proto == CPROTO_BINARY ? proto_bin_process(c)
                                      : proto_text_process(c);
        if (limited && c->iovused == 0) {
            resp_return(c);     /* nothing to send (noreply, partial) */
        }
        if (repl_fed_off != 0) {
            c->last_write_off = repl_fed_off;
        }
        if (c->state == CONN_SYNC_WAIT) {
            (*handled)++;
            return PROTO_DONE;  /* held by repl_wait */
        }
        if (repl_fed_off != 0 && settings.repl_sync && sync_hold(c)) {
            (*handled)++;
            return PROTO_DONE;  /* state is CONN_SYNC_WAIT */
        }
        if (r != PROTO_DONE) {
            return r;
        }
        (*handled)++;
        c->last_cmd_time = current_time;
    }
    return PROTO_NEED_MORE;
}

/* Flush queued replies; returns false if the caller must stop. */
static bool flush_replies(struct conn *c)
{
    switch (transmit(c)) {
    case IO_DONE:
        release_reply(c);
        if (c->close_after_write) {
            conn_close(c);
            return false;
        }
        if (c->state == CONN_WRITE) {
            conn_set_state(c, CONN_READ);
        }
        return update_event(c, EV_READ | EV_PERSIST) ||
               (conn_close(c), false);
    case IO_AGAIN:
        if (!update_event(c, EV_WRITE | EV_PERSIST)) {
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

/* The read path: parse what is buffered, read once more if needed.
 * *handled counts the requests of this event, values read in between
 * included, for -R. */
static void drive_read(struct conn *c, bool readable, int *handled)
{
    bool full = false;

    for (;;) {
        enum proto_result r = parse_requests(c, handled);

        if (r == PROTO_CLOSE) {
            if (c->iovused > 0) {
                if (repl_dirty) {
                    repl_worker_push();     /* rare: no batching */
                }
                c->close_after_write = true;
                flush_replies(c);
            } else {
                conn_close(c);
            }
            return;
        }
        if (c->state == CONN_NREAD || c->state == CONN_SWALLOW ||
            c->state == CONN_WATCH || c->state == CONN_SYNC_WAIT) {
            return;             /* caller's loop continues the state */
        }
        if (c->state == CONN_DIGEST || c->state == CONN_DUMP) {
            /* The socket is writable at once, so each loop turn gives
             * the digest one slice, after the other ready connections. */
            if (!update_event(c, EV_WRITE | EV_PERSIST)) {
                conn_close(c);
            }
            return;
        }
        if (r == PROTO_DONE) {
            /* -R reached: send what we have, and go on only after the
             * worker has polled its other connections.  The socket is
             * writable at once, so EV_WRITE brings us back after the
             * next epoll_wait; event_active() would run us again in
             * this same pass, before anything new is polled. */
            if (repl_dirty && c->iovused > 0) {
                repl_worker_push();     /* the batch of -R requests */
            }
            if (c->iovused > 0 && !flush_replies(c)) {
                return;
            }
            if (!update_event(c, EV_WRITE | EV_PERSIST)) {
                conn_close(c);
            }
            return;
        }
        if (!readable || (*handled > 0 && !full)) {
            break;
        }
        switch (read_some(c, &full)) {
        case IO_DONE:
            readable = full;
            continue;
        case IO_AGAIN:
            readable = false;
            break;
        case IO_ERROR:
        default:
            conn_close(c);
            return;
        }
        break;
    }
    if (c->rsize > RBUF_INITIAL) {
        rbuf_shrink(c);
    }
    if (c->iovused > 0) {
        if (!hold_replies(c)) {
            flush_replies(c);
        }
    } else if ((c->ev_flags & EV_WRITE) != 0 &&
               !update_event(c, EV_READ | EV_PERSIST)) {
        conn_close(c);          /* back from a yield with nothing to send */
    }
}

/* A watcher only sends log lines; input is read and dropped so that a
 * closed peer is noticed.  Lines move from the watcher's buffer to the
 * socket one buffer at a time, the next only once the last is sent: a
 * watcher that does not read holds no more than its buffer
 * (watcher_logbuf_size) and the socket's, and loses the lines after
 * that (watch.c counts them). */
static void drive_watch(struct conn *c, bool readable)
{
    bool full = true;
    int turns;

    while (readable && full) {
        enum io_result r = read_some(c, &full);
        c->rbytes = 0;
        c->rcurr = c->rbuf;
        if (r == IO_ERROR) {
            conn_close(c);
            return;
        }
        if (r == IO_AGAIN) {
            break;
        }
    }
    for (turns = 0; turns < 4; turns++) {
        if (c->iovused == 0) {
            watch_flush(c);
        }
        if (c->iovused == 0) {
            break;
        }
        switch (transmit(c)) {
        case IO_DONE:
            release_reply(c);
            continue;
        case IO_AGAIN:
            if (!update_event(c, EV_READ | EV_WRITE | EV_PERSIST)) {
                conn_close(c);
            }
            return;
        default:
            conn_close(c);
            return;
        }
    }
    /* After 4 buffers in a row, come back once the others have run. */
    if (!update_event(c, c->iovused > 0 || turns == 4
                             ? EV_READ | EV_WRITE | EV_PERSIST
                             : EV_READ | EV_PERSIST)) {
        conn_close(c);
    }
}

static void drive(struct conn *c, short which);

void conn_start_digest(struct conn *c)
{
    items_digest_begin(&c->digest);
    conn_set_state(c, CONN_DIGEST);
}

bool conn_has_queued_replies(const struct conn *c)
{
    return c->iovused > c->iovdone;
}

bool conn_start_dump(struct conn *c, const char *list)
{
    if (!crawler_metadump_begin(&c->dump, list)) {
        return false;
    }
    conn_set_state(c, CONN_DUMP);
    return true;
}

/*
 * One turn of a metadump: send what is queued; once it is all out, add
 * the next slice and send that.  A client that does not read stops the
 * walk, so a dump holds about one slice of memory however large the
 * cache.  Returns true when the dump is complete (END queued).
 */
static bool dump_turn(struct conn *c)
{
    struct strbuf sb;
    unsigned empty = 0;
    bool done;

    if (c->iovdone < c->iovused) {
        if (repl_dirty) {
            repl_worker_push();     /* replies before the dump first */
        }
        switch (transmit(c)) {
        case IO_DONE:
            break;
        case IO_AGAIN:
            return false;
        default:
            conn_close(c);
            return false;
        }
    }
    release_reply(c);
    sb_init(&sb);
    do {                        /* skip runs of empty buckets */
        done = crawler_metadump_step(&c->dump, DIGEST_SLICE, &sb);
    } while (!done && sb.len == 0 && ++empty < 64);
    if (sb.oom) {
        sb_free(&sb);
        conn_out_str(c, "SERVER_ERROR out of memory\r\n");
        return true;
    }
    if (sb.len > 0) {
        conn_out(c, sb.buf, sb.len);
    }
    sb_free(&sb);
    if (done) {
        conn_out_str(c, "END\r\n");
    }
    return done;
}

static void digest_reply(struct conn *c)
{
    char line[128];
    int n = snprintf(line, sizeof(line),
                     "STAT digest %016llx\r\nSTAT digest_items %llu\r\n"
                     "END\r\n", (unsigned long long)c->digest.sum,
                     (unsigned long long)c->digest.count);

    conn_out(c, line, (size_t)n);
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
            if (!update_event(c, EV_READ | EV_PERSIST)) {
                conn_close(c);
                c = next;
                continue;
            }
            /* Send the held replies, then go on with buffered requests
             * in whatever state they lead to. */
            if (c->iovused == 0 || flush_replies(c)) {
                drive(c, 0);
            }
        }
        c = next;
    }
}

void conn_release_held(struct worker *w)
{
    while (w->held != NULL) {
        struct conn *c = w->held;

        w->held = c->hnext;
        c->hnext = NULL;
        c->held = false;
        if (c->iovused == 0) {
            continue;
        }
        if (c->state == CONN_READ) {
            flush_replies(c);
        } else if (c->state == CONN_NREAD && transmit(c) == IO_ERROR) {
            conn_close(c);      /* the rest of the value is still due */
        }
    }
}

void conn_watch_wake(struct worker *w)
{
    struct conn *c = w->conns;

    while (c != NULL) {
        struct conn *next = c->wnext;
        if (c->state == CONN_WATCH) {
            drive_watch(c, false);
        }
        c = next;
    }
}

/* The rest of a value is due (NREAD, or SWALLOW for a refused one):
 * send what is queued meanwhile (earlier pipelined replies, or the
 * refusal, which memcached also sends before the value is in), then wait
 * for EV_READ.  A -R yield may have left EV_WRITE, which fires at once on
 * every loop turn (issue #15). */
static void wait_for_value(struct conn *c)
{
    if (c->iovused > 0 && !hold_replies(c) && transmit(c) == IO_ERROR) {
        conn_close(c);
        return;
    }
    if (!update_event(c, EV_READ | EV_PERSIST)) {
        conn_close(c);
    }
}

/*
 * -Z: the TLS handshake runs on the worker, one non-blocking step per
 * event, so a slow or silent client holds no thread.  conn_close_idle()
 * closes one that has not finished within TLS_HANDSHAKE_SECS (or
 * idle_timeout, if shorter); a failed one is closed at once.  Both count
 * in ssl_handshake_errors.
 */
static bool handshake_step(struct conn *c)
{
    short wait = EV_READ;

    switch (conn_tls_handshake(c, &wait)) {
    case 1:
        conn_set_state(c, CONN_READ);
        c->last_cmd_time = current_time;
        if (!update_event(c, EV_READ | EV_PERSIST)) {
            conn_close(c);
            return false;
        }
        return true;
    case 0:
        if (!update_event(c, (short)(wait | EV_PERSIST))) {
            conn_close(c);
        }
        return false;
    default:
        conn_close(c);
        return false;
    }
}

bool conn_start_tls(struct conn *c)
{
    c->tls = tls_server_new(c->sfd);
    if (c->tls == NULL) {
        tls_server_count_handshake_error();
        log_warn("<%d cannot create a TLS session", c->sfd);
        return false;
    }
    conn_set_state(c, CONN_HANDSHAKE);
    return true;
}

static void drive_states(struct conn *c, short which);

/* Runs c's requests with the storage path told where they came from
 * (in a pair: without receive times there are no late writes). */
static void drive(struct conn *c, short which)
{
    struct write_origin *prev;

    if (!rx_stamps) {
        drive_states(c, which);
        return;
    }
    prev = item_set_origin(&c->origin);
    drive_states(c, which);
    item_set_origin(prev);
}

static void drive_states(struct conn *c, short which)
{
    /* EV_WRITE in CONN_READ: back from a -R yield; read on as well. */
    bool readable = (which & EV_READ) != 0 ||
                    (c->state == CONN_READ && (which & EV_WRITE) != 0);
    int handled = 0;

    for (;;) {
        switch (c->state) {
        case CONN_HANDSHAKE:
            if (!handshake_step(c)) {
                return;
            }
            readable = true;    /* a request may follow the Finished */
            break;
        case CONN_READ:
            drive_read(c, readable, &handled);
            if (c->state != CONN_NREAD && c->state != CONN_SWALLOW &&
                c->state != CONN_WATCH) {
                return;
            }
            readable = c->state != CONN_WATCH;
            break;
        case CONN_WATCH:
            drive_watch(c, readable);
            return;
        case CONN_SYNC_WAIT:
            return;             /* conn_sync_check() resumes it */
        case CONN_DIGEST:
            if (!items_digest_step(&c->digest, DIGEST_SLICE)) {
                return;         /* EV_WRITE brings it back */
            }
            digest_reply(c);
            conn_set_state(c, CONN_READ);
            c->last_cmd_time = current_time;
            readable = false;   /* buffered requests, then the replies */
            break;
        case CONN_DUMP:
            if (!dump_turn(c)) {
                return;         /* EV_WRITE brings it back */
            }
            conn_set_state(c, CONN_READ);
            c->last_cmd_time = current_time;
            readable = false;
            break;
        case CONN_NREAD:
            switch (fill_nread(c)) {
            case IO_DONE:
                conn_set_state(c, CONN_READ);
                repl_fed_off = 0;
                if (settings.repl_sync) {
                    conn_out_mark(c, &c->sync_mark);
                }
                if (c->proto == CPROTO_BINARY) {
                    proto_bin_complete_nread(c);
                } else if (c->nr.meta) {
                    proto_meta_complete_nread(c);
                } else {
                    proto_text_complete_nread(c);
                }
                if (repl_fed_off != 0) {
                    c->last_write_off = repl_fed_off;
                }
                if (repl_fed_off != 0 && settings.repl_sync &&
                    sync_hold(c)) {
                    return;     /* conn_sync_check() resumes it */
                }
                readable = c->rbytes == 0 ? false : readable;
                break;
            case IO_AGAIN:
                wait_for_value(c);
                return;
            default:
                conn_close(c);
                return;
            }
            break;
        case CONN_SWALLOW:
            switch (do_swallow(c)) {
            case IO_DONE:
                conn_set_state(c, CONN_READ);
                break;
            case IO_AGAIN:
                wait_for_value(c);
                return;
            default:
                conn_close(c);
                return;
            }
            break;
        case CONN_WRITE:
            if (flush_replies(c)) {
                /* Back to reading what was buffered meanwhile. */
                readable = false;
                break;
            }
            return;
        case CONN_CLOSING:
            conn_close(c);
            return;
        default:
            return;
        }
    }
}

static void event_handler(evutil_socket_t fd, short which, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    if (c->state == CONN_CLOSED) {
        return;
    }
    c->in_handler = true;
    drive(c, which);
    c->in_handler = false;
    if (repl_dirty && c->thread != NULL) {
        /* Send this loop iteration's replicated writes once, after every
         * other ready connection has been served. */
        worker_repl_schedule(c->thread);
    }
    if (c->close_fd) {
        c->close_fd = false;
        close(c->sfd);          /* c may be reused from here on */
    }
}

/* --- stats conns ---------------------------------------------------------- */

static const char *memcached_state_name(const struct conn *c)
{
    switch (c->state) {
    case CONN_LISTENING:
        return "conn_listening";
    case CONN_HANDSHAKE:
        return "conn_new_cmd";
    case CONN_READ:
        return c->rbytes > 0 ? "conn_parse_cmd" : "conn_waiting";
    case CONN_NREAD:
        return "conn_nread";
    case CONN_SWALLOW:
        return "conn_swallow";
    case CONN_WRITE:
        return "conn_mwrite";
    case CONN_WATCH:
        return "conn_watch";
    case CONN_SYNC_WAIT:
        return "conn_sync_wait";
    case CONN_DIGEST:
        return "conn_digest";
    case CONN_DUMP:
        return "conn_mwrite";
    case CONN_CLOSING:
        return "conn_closing";
    default:
        return "conn_closed";
    }
}

/* As memcached: a UDP socket is listed with a "UDP" line and, while
 * idle, with its own address and no listen_addr; unix clients, which
 * have no address, as "?:<AF 0>". */
void conn_stats(struct strbuf *sb, const struct conn *self)
{
    char name[64];
    int fd;

    for (fd = 0; fd < conns_max; fd++) {
        struct conn *c = conns[fd];
        bool idle_udp;
        if (c == NULL || c->state == CONN_CLOSED) {
            continue;
        }
        idle_udp = c->transport == CT_UDP && c->state == CONN_READ;
        if (c->transport == CT_UDP) {
            snprintf(name, sizeof(name), "%d:UDP", fd);
            sb_stat(sb, name, "UDP");
        }
        snprintf(name, sizeof(name), "%d:addr", fd);
        sb_stat(sb, name, "%s", c->addr[0] != '\0' ? c->addr : "?:<AF 0>");
        if (c->state != CONN_LISTENING && !idle_udp) {
            snprintf(name, sizeof(name), "%d:listen_addr", fd);
            sb_stat(sb, name, "%s", c->listen_addr);
        }
        snprintf(name, sizeof(name), "%d:state", fd);
        sb_stat(sb, name, "%s", c == self ? "conn_parse_cmd"
                                           : memcached_state_name(c));
        snprintf(name, sizeof(name), "%d:secs_since_last_cmd", fd);
        sb_stat(sb, name, "%u", current_time - c->last_cmd_time);
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
