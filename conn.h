/*
 * conn.h - client connections: sockets, buffers, the per-connection state
 * machine and the reply-building API the protocol modules use.
 */
#ifndef CONN_H
#define CONN_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "crawler.h"
#include "item_chunk.h"
#include "items.h"
#include "items_digest.h"
#include "proto_bin.h"
#include "settings.h"

struct tls;
struct worker;

/* A connection's states, with the name conn_state_name() logs (-vvv). */
#define CONN_STATES(X)                                                    \
    X(CONN_LISTENING, "listening")  /* a listening socket */              \
    X(CONN_HANDSHAKE, "handshake")  /* -Z: TLS handshake not finished */  \
    X(CONN_READ, "read")            /* waiting for / parsing requests */  \
    X(CONN_NREAD, "nread")          /* reading a value into an item */    \
    X(CONN_SWALLOW, "swallow")      /* discarding a value we refused */   \
    X(CONN_WRITE, "write")          /* sending queued replies */          \
    X(CONN_WATCH, "watch")          /* streaming `watch` log lines */     \
    X(CONN_SYNC_WAIT, "sync_wait")  /* holding replies until the peer     \
                                       acks */                            \
    X(CONN_DIGEST, "digest")        /* computing `stats replication       \
                                       digest` */                         \
    X(CONN_DUMP, "dump")            /* sending `lru_crawler metadump` */  \
    X(CONN_CLOSING, "closing")      /* to be closed once replies are      \
                                       sent */                            \
    X(CONN_CLOSED, "closed")        /* closed; structure free for reuse */

#define CONN_STATE_ENUM(e, name) e,
enum conn_state { CONN_STATES(CONN_STATE_ENUM) CONN_MAX_STATE };
#undef CONN_STATE_ENUM

/* Why a connection closed, for `watch connevents` (memcached's names). */
enum conn_close_reason {
    CLOSE_ERROR,                /* a protocol or I/O error (the default) */
    CLOSE_NORMAL,               /* quit, or the client closed */
    CLOSE_IDLE_TIMEOUT,         /* -o idle_timeout */
    CLOSE_SHUTDOWN              /* the server is stopping */
};

enum conn_proto {
    CPROTO_NEGOTIATE,           /* first byte not seen yet */
    CPROTO_TEXT,                /* text and meta */
    CPROTO_BINARY               /* binary */
};

/* A block of reply text.  Blocks never move once written to, so iovecs
 * may point into them. */
struct wblock {
    struct wblock *next;        /* next block of this reply batch */
    size_t size;                /* bytes of data[] */
    size_t used;                /* bytes written */
    char data[];                /* the text */
};

/* What to do with a value once it has been read (CONN_NREAD). */
struct nread {
    struct item *it;            /* the item being filled */
    char *dst;                  /* where the next byte goes */
    size_t left;                /* bytes still to read */
    struct value_cursor vc;     /* which chunk dst is in (chunked items) */
    enum store_mode mode;       /* store mode to apply */
    uint64_t cas;               /* client's cas token */
    bool noreply;               /* no reply on success */
    bool meta;                  /* an ms data block (proto_meta.c) */
    bool auth;                  /* the credentials of -Y authentication,
                                   read into token (no item) */
    char *token;                /* auth: malloc'd buffer for them */
};

/* A point in the reply queue to roll back to when a multi-part reply
 * fails half way (a bad key in a multi-get), or a synchronous write
 * the peer could not store. */
struct out_mark {
    int iovused;                /* iov slots at the mark */
    int icount;                 /* item references at the mark */
    struct wblock *wlast;       /* block being filled at the mark */
    size_t wused;               /* its fill level */
    size_t last_iov_len;        /* length of the last iov at the mark */
};

struct conn {
    int sfd;                    /* the socket */
    enum conn_state state;      /* see enum conn_state */
    enum conn_proto proto;      /* protocol spoken */
    struct event *ev;           /* read/write event on sfd */
    short ev_flags;             /* flags ev is registered with */
    struct worker *thread;      /* owning worker (NULL: listener) */
    enum conn_transport transport; /* TCP, unix or UDP */
    bool tls_port;              /* listener: its connections speak TLS */
    struct tls *tls;            /* TLS session (-Z), NULL: plain text */
    char addr[64];              /* peer address for stats conns */
    char listen_addr[64];       /* listener it arrived on */

    char *rbuf;                 /* read buffer */
    size_t rsize;               /* bytes allocated */
    char *rcurr;                /* next unparsed byte */
    size_t rbytes;              /* unparsed bytes at rcurr */

    struct iovec *iov;          /* reply pieces, in order */
    int iovsize;                /* slots in iov */
    int iovused;                /* slots filled */
    int iovdone;                /* slots fully sent */
    struct wblock *wfirst;      /* text blocks of the pending reply */
    struct wblock *wlast;       /* block being filled */
    size_t wbytes;              /* bytes of blocks beyond wfirst */
    struct item **ilist;        /* items whose values iov points into */
    int isize;                  /* slots in ilist */
    int icount;                 /* slots filled */
    int nresp;                  /* response slots taken from the worker's
                                   read_buf_mem_limit share (conn_resp_take) */

    struct nread nr;            /* value being read */
    struct digest_walk digest;  /* CONN_DIGEST: the walk so far */
    struct metadump dump;       /* CONN_DUMP: the walk so far */
    size_t sbytes;              /* bytes left to swallow */
    bool close_after_write;     /* quit: close once replies are out */
    bool get_rest_checked;      /* the next request is the rest of a
                                   multi-get, its keys already checked */
    bool noreply;               /* current command wants no reply */
    uint32_t last_cmd_time;     /* for idle_timeout and stats conns */
    uint32_t last_io_time;      /* last byte read or sent (idle_timeout) */
    unsigned watch_flags;       /* LOG_* categories for `watch` */
    void *proto_state;          /* protocol module's own data */
    struct bin_req bin;         /* binary request being handled */
    bool authenticated;         /* passed SASL or text auth */
    bool sasl_step;             /* an AUTH exchange is open: STEP next */
    void *sasl;                 /* SASL session of -S (sasl.c), or NULL */
    bool monitor;               /* from the monitor listener: stats only */
    bool in_handler;            /* inside event_handler: defer close(2) */
    bool close_fd;              /* close(2) when the handler returns */
    uint64_t sync_off;          /* stream offset the peer must reach */
    uint64_t last_write_off;    /* stream offset past this conn's last
                                   replicated write (repl_wait) */
    bool wait_cmd;              /* held by repl_wait: answer OK/TIMEOUT */
    uint64_t sync_deadline_us;  /* reply anyway after this */
    struct out_mark sync_mark;  /* repl_sync: where the held write's reply
                                   starts, replaced by an error if the
                                   peer could not store the write */
    bool sync_quiet;            /* ... no reply (noreply, meta q): no
                                   error either */
    struct write_origin origin; /* receive time of the bytes being
                                   parsed, for late writes (items.h) */
    bool held;                  /* replies wait for the pass's push */
    struct conn *hnext;         /* next in the worker's held list */
    struct conn *wnext;         /* next in the worker's list */
    struct conn *wprev;         /* previous in the worker's list */
    enum conn_close_reason close_reason; /* for the conn_close log line */
    struct udp_req *udp;        /* CT_UDP: the datagram being served
                                   (conn_udp.c); NULL otherwise */
};

const char *conn_state_name(enum conn_state s);

/* Set up the connection table for up to maxfds descriptors. */
int conn_init(int maxfds);
/* Create a connection for sfd on worker w (or the listener base). */
struct conn *conn_new(int sfd, enum conn_state state, struct worker *w,
                      struct event_base *base);
void conn_close(struct conn *c);
/* Close every connection of a worker (shutdown). */
void conn_close_all(struct worker *w);
/* Close w's client connections, monitor ones excepted (the gate closing
 * again after a stall: replication.c, "A node that was stopped"). */
void conn_close_clients(struct worker *w);

/* After the worker pushed its replicated writes to the link: send the
 * replies that were held for them (w's thread). */
void conn_release_held(struct worker *w);

/* Close connections idle longer than idle_timeout (worker timer). */
void conn_close_idle(struct worker *w);

/* Read `it`'s value (nr->left bytes) from the stream, then call the
 * protocol's completion (proto_text_complete_nread).  A chunked value
 * is read chunk by chunk; the test is made here, in the caller, so that
 * conn_start_nread_flat stays as small as it was before chunked items
 * (bench: instructions per set). */
void conn_start_nread_flat(struct conn *c, struct item *it,
                           enum store_mode mode, uint64_t cas, bool noreply);
void conn_start_nread_chunked(struct conn *c, struct item *it,
                              enum store_mode mode, uint64_t cas,
                              bool noreply);
static inline void conn_start_nread(struct conn *c, struct item *it,
                                    enum store_mode mode, uint64_t cas,
                                    bool noreply)
{
    if (item_is_chunked(it)) {
        conn_start_nread_chunked(c, it, mode, cas, noreply);
    } else {
        conn_start_nread_flat(c, it, mode, cas, noreply);
    }
}
/* -Y: read the n bytes of "user password\r\n" into a small buffer of
 * the connection, then call proto_text_complete_nread.  -1: no memory. */
int conn_start_auth_read(struct conn *c, size_t n);
/* Discard the next n bytes of input (a refused value). */
void conn_start_swallow(struct conn *c, size_t n);

/* Begin the TLS handshake of a connection from a -Z listener (its
 * worker): false when no session could be made (counted; close it). */
bool conn_start_tls(struct conn *c);
/* Client sockets carry the kernel's receive time from now on: a listener
 * set SO_TIMESTAMP (conn_listen.c, in a pair). */
void conn_enable_rx_stamps(void);

/* "stats conns" lines; self is the connection asking (shown as
 * conn_parse_cmd, as memcached shows it). */
struct strbuf;
void conn_stats(struct strbuf *sb, const struct conn *self);

/* Change c's state (logged at -vvv); the one setter of c->state. */
void conn_set_state(struct conn *c, enum conn_state s);

#endif
