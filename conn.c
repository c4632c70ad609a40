/*
 * conn.c - client connections: the libevent callback, the per-connection
 * state machine, the read path (buffers, the parse loop) and the
 * lifecycle.  Replies are built and sent in conn_reply.c, sync-mode waits
 * are conn_sync.c's, watch/metadump/digest turns conn_admin.c's, the TLS
 * handshake conn_io.c's.  What a request means is the protocol modules'
 * business (proto_text.c); these files only move bytes.
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
#include "conn_admin.h"
#include "conn_internal.h"
#include "conn_reply.h"
#include "conn_sync.h"
#include "conn_io.h"
#include "conn_udp.h"
#include "log.h"
#include "proto_bin.h"
#include "proto_meta.h"
#include "proto.h"
#include "proto_text.h"
#include "replication.h"
#include "repl_wake.h"
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
#define IOV_INITIAL 64
#define ILIST_INITIAL 32

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

bool conn_update_event(struct conn *c, short flags)
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
    c->origin.stalled = false;
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
    conn_release_reply(c);
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

/* --- what to read next (protocol modules) ------------------------------ */

void conn_start_nread_flat(struct conn *c, struct item *it,
                           enum store_mode mode, uint64_t cas, bool noreply)
{
    c->nr.it = it;
    c->nr.vc.ch = NULL;
    c->nr.dst = ITEM_data(it);
    c->nr.left = it->nbytes;
    c->nr.mode = mode;
    c->nr.cas = cas;
    c->nr.noreply = noreply;
    c->nr.meta = false;
    c->nr.auth = false;
    conn_set_state(c, CONN_NREAD);
}

void conn_start_nread_chunked(struct conn *c, struct item *it,
                              enum store_mode mode, uint64_t cas,
                              bool noreply)
{
    conn_start_nread_flat(c, it, mode, cas, noreply);
    item_cursor_start_chunked(&c->nr.vc, it, &c->nr.dst);
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

/* --- reading ------------------------------------------------------------ */

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

/* The wall clock libevent read at the top of this loop turn, in ms. */
static uint64_t turn_ms(struct conn *c)
{
    struct timeval tv;

    if (c->thread == NULL ||
        event_base_gettimeofday_cached(c->thread->base, &tv) != 0) {
        return 0;
    }
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* Whether the client has closed its side (or reset): nothing left to
 * read but the end. */
static bool peer_closed(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                      errno != EINTR);
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
        int w = c->monitor ? 0 : repl_wake_check(c->origin.rx_ms,
                                                  turn_ms(c));
        if (w < 0) {
            /* The port closed again after a stall. */
            errno = ECONNABORTED;
            return -1;
        }
        c->origin.stalled = w > 0 ||
                            repl_wake_before_hold_end(c->origin.rx_ms);
        if (c->origin.stalled && peer_closed(c->sfd)) {
            /* These bytes waited through a stall and their client has
             * closed the connection since: it gave up on them, and may
             * have sent them to the peer meanwhile.  Run late, a lock
             * they take would be nobody's.  The receive time alone
             * cannot tell: a FIN merged into the data moves it to the
             * close, which can be just before the wake. */
            wake_count_abandoned();
            return 0;
        }
    } else {
        c->origin.rx_ms = 0;
        c->origin.stalled = false;
    }
    return n;
}

/* One read(2) into rbuf.  *full tells whether it filled the space, in
 * which case more may be waiting. */
enum io_result conn_read_some(struct conn *c, bool *full)
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
        if (repl_fed_off != 0 && settings.repl_sync && conn_sync_hold(c)) {
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
                conn_flush_replies(c);
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
            if (!conn_update_event(c, EV_WRITE | EV_PERSIST)) {
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
            if (c->iovused > 0 && !conn_flush_replies(c)) {
                return;
            }
            if (!conn_update_event(c, EV_WRITE | EV_PERSIST)) {
                conn_close(c);
            }
            return;
        }
        if (!readable || (*handled > 0 && !full)) {
            break;
        }
        switch (conn_read_some(c, &full)) {
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
            conn_flush_replies(c);
        }
    } else if ((c->ev_flags & EV_WRITE) != 0 &&
               !conn_update_event(c, EV_READ | EV_PERSIST)) {
        conn_close(c);          /* back from a yield with nothing to send */
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
            conn_flush_replies(c);
        } else if (c->state == CONN_NREAD && conn_transmit(c) == IO_ERROR) {
            conn_close(c);      /* the rest of the value is still due */
        }
    }
}

/* The rest of a value is due (NREAD, or SWALLOW for a refused one):
 * send what is queued meanwhile (earlier pipelined replies, or the
 * refusal, which memcached also sends before the value is in), then wait
 * for EV_READ.  A -R yield may have left EV_WRITE, which fires at once on
 * every loop turn (issue #15). */
static void wait_for_value(struct conn *c)
{
    if (c->iovused > 0 && !hold_replies(c) && conn_transmit(c) == IO_ERROR) {
        conn_close(c);
        return;
    }
    if (!conn_update_event(c, EV_READ | EV_PERSIST)) {
        conn_close(c);
    }
}

static void drive_states(struct conn *c, short which);

/* Runs c's requests with the storage path told where they came from
 * (in a pair: without receive times there are no late writes). */
void conn_drive(struct conn *c, short which)
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

/* After fill_nread() or do_swallow(): true when the value is all in;
 * else the connection waits for more, or is closed. */
static bool value_step(struct conn *c, enum io_result r)
{
    if (r == IO_DONE) {
        return true;
    }
    if (r == IO_AGAIN) {
        wait_for_value(c);
    } else {
        conn_close(c);
    }
    return false;
}

/* A value read whole: its protocol completes the command.  false when
 * repl_sync holds the reply (conn_sync_check() resumes the connection). */
static bool value_done(struct conn *c)
{
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
    return !(repl_fed_off != 0 && settings.repl_sync && conn_sync_hold(c));
}

/* A digest or metadump finished its last turn: back to requests. */
static void admin_turn_done(struct conn *c)
{
    conn_set_state(c, CONN_READ);
    c->last_cmd_time = current_time;
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
            if (!conn_tls_handshake_step(c)) {
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
            conn_drive_watch(c, readable);
            return;
        case CONN_SYNC_WAIT:
            return;             /* conn_sync_check() resumes it */
        case CONN_DIGEST:
            if (!items_digest_step(&c->digest, DIGEST_SLICE)) {
                return;         /* EV_WRITE brings it back */
            }
            conn_digest_reply(c);
            admin_turn_done(c);
            readable = false;   /* buffered requests, then the replies */
            break;
        case CONN_DUMP:
            if (!conn_dump_turn(c)) {
                return;         /* EV_WRITE brings it back */
            }
            admin_turn_done(c);
            readable = false;
            break;
        case CONN_NREAD:
            if (!value_step(c, fill_nread(c)) || !value_done(c)) {
                return;
            }
            readable = c->rbytes == 0 ? false : readable;
            break;
        case CONN_SWALLOW:
            if (!value_step(c, do_swallow(c))) {
                return;
            }
            conn_set_state(c, CONN_READ);
            break;
        case CONN_WRITE:
            if (conn_flush_replies(c)) {
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
    conn_drive(c, which);
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
