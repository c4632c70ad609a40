/*
 * loadgen.c: closed-loop load generator for bench/run.sh.
 * Owns: N non-blocking connections on one epoll, exactly one request in
 * flight per connection, the text, binary and meta protocols, and a
 * one-line summary.  Optional: a request rate limit (-r), a latency
 * histogram (-l), a per-request latency dump (-O), and a replication lag
 * probe of a pair (-Y), TLS (-S: OpenSSL, handshake at connect, no
 * certificate check).  Not: starting servers or statistics over rounds
 * (bench/harness.pl, bench/repl.sh do that).  Talks to loopback
 * addresses only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define KEY_MAX 32          /* longest key we format, with the NUL */
#define MAX_WIDTH 100       /* most keys in one multi-get */
#define MAX_EVENTS 256      /* epoll_wait batch */
#define HIST_FINE 100000    /* 1 us latency buckets below 100 ms ... */
#define HIST_COARSE 100000  /* ... then 1 ms buckets up to 100 s */

/* binary protocol opcodes and magics (protocol_binary.h in memcached) */
#define BIN_REQ 0x80
#define BIN_RES 0x81
#define BIN_GET 0x00
#define BIN_SET 0x01
#define BIN_GETQ 0x09
#define BIN_NOOP 0x0a
#define BIN_HDR 24

enum proto {
    PROTO_TEXT,
    PROTO_BINARY,
    PROTO_META
};

enum req_type {
    REQ_GET,
    REQ_SET
};

enum parse_result {
    PARSE_MORE,             /* response incomplete: read more */
    PARSE_DONE,             /* response complete */
    PARSE_BROKEN            /* cannot make sense of the bytes: give up */
};

/* Command line, fixed for the whole run. */
struct options {
    int port;               /* server TCP port on host */
    const char *host;       /* server address, must be 127.x.y.z */
    int conns;              /* connections, one request in flight each */
    uint32_t keys;          /* key space: key:00000000 .. keys-1 */
    uint32_t value_len;     /* bytes per stored value */
    double get_ratio;       /* fraction of requests that are gets */
    int width;              /* keys per get (1: single get) */
    enum proto proto;       /* wire protocol */
    double duration;        /* stop issuing after this many seconds */
    uint64_t count;         /* stop issuing after this many requests */
    int preload;            /* set every key once, then stop */
    double time_limit;      /* hard limit on the whole run, seconds */
    uint64_t seed;          /* PRNG seed; connection i uses seed + i */
    double wait;            /* >0: only wait for the server to answer */
    double rate;            /* >0: requests per second, all conns */
    int latency;            /* print the latency percentiles line */
    const char *dump;       /* per-request latency file, or NULL */
    int probe_port;         /* >0: lag probe mode, peer's client port */
    int tls;                /* -S: every load connection speaks TLS */
    double probe_gap;       /* lag probe: seconds between probes */
};

/* One connection and its request in flight. */
struct conn {
    int fd;                 /* non-blocking socket */
    SSL *ssl;               /* -S: its TLS session, else NULL */
    int id;                 /* index, for the PRNG seed */
    uint64_t rng;           /* xorshift64* state */
    char *wbuf;             /* request being written */
    size_t wcap;            /* wbuf size */
    size_t wlen;            /* request length */
    size_t woff;            /* bytes of it written so far */
    char *rbuf;             /* response bytes read, unparsed from roff */
    size_t rcap;            /* rbuf size */
    size_t rlen;            /* bytes in rbuf */
    size_t roff;            /* start of the first unparsed element */
    enum req_type type;     /* what is in flight */
    int width;              /* keys asked for by the get in flight */
    int hits;               /* values received for it so far */
    int busy;               /* 1 while a request is in flight */
    int want_out;           /* 1 while EPOLLOUT is armed */
    double t_req;           /* latency origin of the request in flight */
};

/* Counters for the summary line. */
struct totals {
    uint64_t issued;        /* requests sent (a multi-get counts once) */
    uint64_t done;          /* responses complete */
    uint64_t gets;          /* get requests complete */
    uint64_t sets;          /* set requests complete */
    uint64_t get_keys;      /* keys asked for by completed gets */
    uint64_t hits;          /* values received */
    uint64_t errors;        /* error replies and short values */
    uint32_t next_key;      /* next key to store in preload mode */
};

static struct options opt;
static struct totals tot;
static char *value_buf;     /* value_len bytes of payload + "\r\n" */
static double t_start;      /* first request issued */
static double t_last;       /* last response completed */

/* Latency: a histogram of every completed request, in microseconds,
 * from its send.  With -r, a request that found no free connection at
 * its scheduled time is timed from that time instead, so that a server
 * stall also counts for the requests it held back (no coordinated
 * omission); the lateness of our own timer is not counted. */
static uint64_t *hist;      /* HIST_FINE + HIST_COARSE buckets */
static double lat_max;      /* seconds */
static double lat_sum;      /* seconds */

/* -O: one record per completed request */
struct lat_rec {
    double t;               /* latency origin, CLOCK_MONOTONIC seconds */
    float us;               /* latency, microseconds */
    char type;              /* 'g' or 's' */
};
static struct lat_rec *recs;
static size_t nrecs, caprecs;

static double now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL) {
        die("malloc");
    }
    return p;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int key_format(char *buf, uint32_t k)
{
    return snprintf(buf, KEY_MAX, "key:%08u", k);
}

/*
 * Request building.  Each builder writes one whole request into c->wbuf,
 * whose size was computed in conn_new() for the widest request.
 */

static size_t put(char *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
    return n;
}

static size_t bin_header(char *p, uint8_t op, uint16_t keylen,
                         uint8_t extlen, uint32_t bodylen, uint32_t opaque)
{
    uint16_t kl = htons(keylen);
    uint32_t bl = htonl(bodylen);

    memset(p, 0, BIN_HDR);
    p[0] = (char)BIN_REQ;
    p[1] = (char)op;
    memcpy(p + 2, &kl, 2);
    p[4] = (char)extlen;
    memcpy(p + 8, &bl, 4);
    memcpy(p + 12, &opaque, 4);
    return BIN_HDR;
}

static size_t build_get(struct conn *c, const uint32_t *k, int n)
{
    char key[KEY_MAX];
    char *p = c->wbuf;
    int i, kl;

    if (opt.proto == PROTO_TEXT) {
        p += put(p, "get", 3);
        for (i = 0; i < n; i++) {
            kl = key_format(key, k[i]);
            *p++ = ' ';
            p += put(p, key, kl);
        }
        p += put(p, "\r\n", 2);
    } else if (opt.proto == PROTO_META) {
        for (i = 0; i < n; i++) {
            kl = key_format(key, k[i]);
            p += put(p, "mg ", 3);
            p += put(p, key, kl);
            p += put(p, n > 1 ? " v q\r\n" : " v\r\n", n > 1 ? 6 : 4);
        }
        if (n > 1) {
            p += put(p, "mn\r\n", 4);
        }
    } else {
        for (i = 0; i < n; i++) {
            kl = key_format(key, k[i]);
            p += bin_header(p, n > 1 ? BIN_GETQ : BIN_GET, kl, 0, kl, i);
            p += put(p, key, kl);
        }
        if (n > 1) {
            p += bin_header(p, BIN_NOOP, 0, 0, 0, n);
        }
    }
    return p - c->wbuf;
}

static size_t build_set(struct conn *c, uint32_t k)
{
    char key[KEY_MAX];
    char *p = c->wbuf;
    int kl = key_format(key, k);

    if (opt.proto == PROTO_TEXT) {
        p += sprintf(p, "set %s 0 0 %u\r\n", key, opt.value_len);
    } else if (opt.proto == PROTO_META) {
        p += sprintf(p, "ms %s %u\r\n", key, opt.value_len);
    } else {
        p += bin_header(p, BIN_SET, kl, 8, 8 + kl + opt.value_len, 0);
        memset(p, 0, 8);    /* flags 0, exptime 0 */
        p += 8;
        p += put(p, key, kl);
        return (p - c->wbuf) + put(p, value_buf, opt.value_len);
    }
    return (p - c->wbuf) + put(p, value_buf, opt.value_len + 2);
}

/*
 * Response parsing.  Each parser consumes whole elements (a status line,
 * a value line with its data, a binary packet) from c->rbuf + c->roff and
 * says whether the response to the request in flight is complete.
 * Elements stay in the buffer until complete, so a parser only ever
 * re-reads the one element that was cut short.
 */

static char *find_eol(struct conn *c)
{
    return memmem(c->rbuf + c->roff, c->rlen - c->roff, "\r\n", 2);
}

static int line_is(const char *line, size_t len, const char *word)
{
    size_t n = strlen(word);

    return len >= n && memcmp(line, word, n) == 0
        && (len == n || line[n] == ' ');
}

/* A value of `bytes` follows a header line of hdr bytes, CRLF included. */
static enum parse_result take_value(struct conn *c, size_t hdr,
                                    unsigned long bytes)
{
    size_t need = hdr + bytes + 2;

    if (c->rlen - c->roff < need) {
        return PARSE_MORE;
    }
    if (bytes != opt.value_len
        || memcmp(c->rbuf + c->roff + hdr + bytes, "\r\n", 2) != 0) {
        tot.errors++;
    }
    c->hits++;
    c->roff += need;
    return PARSE_DONE;
}

static enum parse_result parse_text(struct conn *c)
{
    for (;;) {
        char *line = c->rbuf + c->roff;
        char *eol = find_eol(c);
        size_t len;
        unsigned long bytes;

        if (eol == NULL) {
            return PARSE_MORE;
        }
        len = eol - line;
        if (c->type == REQ_GET && line_is(line, len, "VALUE")) {
            if (sscanf(line, "VALUE %*s %*u %lu", &bytes) != 1) {
                return PARSE_BROKEN;
            }
            if (take_value(c, len + 2, bytes) == PARSE_MORE) {
                return PARSE_MORE;
            }
            continue;
        }
        c->roff += len + 2;
        if (c->type == REQ_GET ? !line_is(line, len, "END")
                               : !line_is(line, len, "STORED")) {
            tot.errors++;
        }
        return PARSE_DONE;
    }
}

static enum parse_result parse_meta(struct conn *c)
{
    for (;;) {
        char *line = c->rbuf + c->roff;
        char *eol = find_eol(c);
        size_t len;
        unsigned long bytes;

        if (eol == NULL) {
            return PARSE_MORE;
        }
        len = eol - line;
        if (c->type == REQ_GET && line_is(line, len, "VA")) {
            if (sscanf(line, "VA %lu", &bytes) != 1) {
                return PARSE_BROKEN;
            }
            if (take_value(c, len + 2, bytes) == PARSE_MORE) {
                return PARSE_MORE;
            }
            if (c->width == 1) {
                return PARSE_DONE;
            }
            continue;
        }
        c->roff += len + 2;
        if (c->type == REQ_SET) {
            tot.errors += !line_is(line, len, "HD");
        } else if (c->width == 1) {
            tot.errors += !line_is(line, len, "EN");
        } else if (!line_is(line, len, "MN")) {
            tot.errors++;
            continue;       /* a quiet get's error: MN still comes */
        }
        return PARSE_DONE;
    }
}

static enum parse_result parse_binary(struct conn *c)
{
    while (c->rlen - c->roff >= BIN_HDR) {
        unsigned char *h = (unsigned char *)c->rbuf + c->roff;
        uint32_t body;
        uint16_t status;
        uint8_t op = h[1];

        memcpy(&body, h + 8, 4);
        body = ntohl(body);
        memcpy(&status, h + 6, 2);
        status = ntohs(status);
        if (h[0] != BIN_RES) {
            return PARSE_BROKEN;
        }
        if (c->rlen - c->roff < BIN_HDR + (size_t)body) {
            return PARSE_MORE;
        }
        c->roff += BIN_HDR + body;
        if ((op == BIN_GET || op == BIN_GETQ) && status == 0) {
            c->hits++;
            if (body - h[4] - ((h[2] << 8) | h[3]) != opt.value_len) {
                tot.errors++;
            }
        } else if (status != 0 && !(op == BIN_GET && status == 1)) {
            tot.errors++;
        }
        if (op != BIN_GETQ) {
            return PARSE_DONE;
        }
    }
    return PARSE_MORE;
}

/*
 * Connection life: conn_new() connects; issue() sends the next request
 * or parks the connection when the run is over; on_readable() and
 * on_writable() move bytes and call issue() again when a response is
 * complete.  `inflight` counts busy connections; the run ends at zero.
 */

static int epfd;
static int inflight;

static void set_events(struct conn *c, int want_out)
{
    struct epoll_event ev;

    if (c->want_out == want_out) {
        return;
    }
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        die("epoll_ctl");
    }
    c->want_out = want_out;
}

static int host_is_loopback(const char *host)
{
    struct in_addr a;

    if (inet_pton(AF_INET, host, &a) != 1) {
        return 0;
    }
    return (ntohl(a.s_addr) >> 24) == 127;
}

static int connect_to_port(int port, int nonblock)
{
    struct sockaddr_in sa;
    int fd, one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, opt.host, &sa.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        die("socket");
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (nonblock && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        die("fcntl");
    }
    return fd;
}

static int connect_to_server(int nonblock)
{
    return connect_to_port(opt.port, nonblock);
}

/* -S: one client context; each connection shakes hands while its
 * socket is still blocking, then goes non-blocking like the others. */
static SSL_CTX *tls_ctx;

static void tls_connect(struct conn *c)
{
    if (tls_ctx == NULL) {
        tls_ctx = SSL_CTX_new(TLS_client_method());
        if (tls_ctx == NULL) {
            die("SSL_CTX_new");
        }
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    c->ssl = SSL_new(tls_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_connect(c->ssl) != 1) {
        ERR_print_errors_fp(stderr);
        die("TLS handshake");
    }
    if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0) {
        die("fcntl");
    }
}

/* read(2)/write(2) or their TLS forms; -1 with errno EAGAIN to wait */
static ssize_t io_map(struct conn *c, int rc, size_t done)
{
    int err;

    if (rc == 1) {
        return (ssize_t)done;
    }
    err = SSL_get_error(c->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
        return 0;
    }
    errno = EPROTO;
    return -1;
}

static ssize_t conn_write(struct conn *c, const void *p, size_t n)
{
    size_t done = 0;
    int rc;

    if (c->ssl == NULL) {
        return write(c->fd, p, n);
    }
    rc = SSL_write_ex(c->ssl, p, n, &done);
    return io_map(c, rc, done);
}

/* TLS: also take what the session holds decrypted beyond one record,
 * which epoll would not report */
static ssize_t conn_read(struct conn *c, void *p, size_t n)
{
    size_t done = 0, more = 0;
    ssize_t r;
    int rc;

    if (c->ssl == NULL) {
        return read(c->fd, p, n);
    }
    rc = SSL_read_ex(c->ssl, p, n, &done);
    r = io_map(c, rc, done);
    while (r > 0 && (size_t)r < n && SSL_pending(c->ssl) > 0 &&
           SSL_read_ex(c->ssl, (char *)p + r, n - (size_t)r, &more) == 1) {
        r += (ssize_t)more;
    }
    return r;
}

static struct conn *conn_new(int id)
{
    struct conn *c = xmalloc(sizeof(*c));
    struct epoll_event ev;
    size_t per_key = KEY_MAX + BIN_HDR + 16;

    memset(c, 0, sizeof(*c));
    c->id = id;
    c->rng = opt.seed + 0x9E3779B97F4A7C15ULL * (id + 1);
    c->wcap = opt.value_len + 128 + per_key * (MAX_WIDTH + 1);
    c->wbuf = xmalloc(c->wcap);
    c->rcap = (opt.value_len + 128) * (size_t)opt.width + 4096;
    c->rbuf = xmalloc(c->rcap);
    c->fd = connect_to_server(!opt.tls);
    if (c->fd < 0) {
        die("connect");
    }
    if (opt.tls) {
        tls_connect(c);
    }
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        die("epoll_ctl");
    }
    return c;
}

/* SIGINT/SIGTERM: stop issuing, finish what is in flight, print the
 * summary (and the -O file) as if the duration had ended. */
static volatile sig_atomic_t stop_now;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_now = 1;
}

static int may_issue(void)
{
    if (stop_now) {
        return 0;
    }
    if (opt.preload) {
        return tot.next_key < opt.keys;
    }
    if (opt.count > 0 && tot.issued >= opt.count) {
        return 0;
    }
    if (opt.duration > 0 && now_sec() - t_start >= opt.duration) {
        return 0;
    }
    return 1;
}

static int try_write(struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = conn_write(c, c->wbuf + c->woff, c->wlen - c->woff);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            set_events(c, 1);
            return 0;
        }
        if (n < 0) {
            die("write");
        }
        c->woff += n;
    }
    set_events(c, 0);
    return 0;
}

/*
 * Rate limit (-r): request i may leave at t_start + i / rate.  A
 * connection that is free before its slot waits on a stack of idle
 * connections, and a timerfd on the same epoll wakes the loop at the
 * next slot.  A slot already past is used at once (catching up).
 */
static int timer_fd = -1;
static double next_slot;    /* send time of the next request */
static struct conn **idle;  /* connections waiting for a slot */
static int nidle;
static int timer_armed;
static int from_timer;      /* issue() called for an idle connection */

static void arm_timer(void)
{
    struct itimerspec its;
    double t = next_slot;

    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)t;
    its.it_value.tv_nsec = (long)((t - (time_t)t) * 1e9);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) {
        its.it_value.tv_nsec = 1;
    }
    if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
        die("timerfd_settime");
    }
    timer_armed = 1;
}

static void issue(struct conn *c);

static void on_timer(void)
{
    uint64_t ticks;
    double now;

    if (read(timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN) {
        die("read timerfd");
    }
    timer_armed = 0;
    now = now_sec();
    while (nidle > 0 && (now >= next_slot || !may_issue())) {
        from_timer = 1;
        issue(idle[--nidle]);
        from_timer = 0;
    }
    if (nidle > 0 && !timer_armed) {
        arm_timer();
    }
}

static void issue(struct conn *c)
{
    uint32_t k[MAX_WIDTH];
    int i;

    if (!may_issue()) {
        c->busy = 0;
        inflight--;
        return;
    }
    if (opt.rate > 0) {
        double now = now_sec();

        if (now < next_slot) {
            idle[nidle++] = c;
            if (!timer_armed) {
                arm_timer();
            }
            return;
        }
        /* A connection was free at the slot and only our timer woke late:
         * time from the actual send.  No connection was free: the
         * request waited for the server, so time from the slot. */
        c->t_req = from_timer || nidle > 0 ? now : next_slot;
        next_slot += 1.0 / opt.rate;
    } else {
        c->t_req = now_sec();
    }
    if (opt.preload) {
        c->type = REQ_SET;
        c->wlen = build_set(c, tot.next_key++);
    } else if ((rng_next(&c->rng) >> 11) * 0x1.0p-53 < opt.get_ratio) {
        c->type = REQ_GET;
        for (i = 0; i < opt.width; i++) {
            k[i] = rng_next(&c->rng) % opt.keys;
        }
        c->wlen = build_get(c, k, opt.width);
    } else {
        c->type = REQ_SET;
        c->wlen = build_set(c, rng_next(&c->rng) % opt.keys);
    }
    c->width = c->type == REQ_GET ? opt.width : 0;
    c->hits = 0;
    c->woff = 0;
    tot.issued++;
    try_write(c);
}

static void lat_note(struct conn *c, double sec)
{
    double us = sec * 1e6;
    size_t b;

    if (us < 0) {
        us = 0;
    }
    b = us < HIST_FINE ? (size_t)us
      : HIST_FINE + (us / 1000 < HIST_COARSE ? (size_t)(us / 1000)
                                             : HIST_COARSE - 1);
    hist[b]++;
    lat_sum += sec;
    if (sec > lat_max) {
        lat_max = sec;
    }
    if (opt.dump != NULL) {
        if (nrecs == caprecs) {
            caprecs = caprecs ? caprecs * 2 : 65536;
            recs = realloc(recs, caprecs * sizeof(*recs));
            if (recs == NULL) {
                die("realloc");
            }
        }
        recs[nrecs].t = c->t_req;
        recs[nrecs].us = (float)us;
        recs[nrecs].type = c->type == REQ_GET ? 'g' : 's';
        nrecs++;
    }
}

/* The smallest latency (us) at or below which a fraction q of the
 * requests completed: exact to 1 us below 100 ms, to 1 ms above. */
static double hist_quantile(double q)
{
    uint64_t n = 0, want, seen = 0;
    size_t b;

    for (b = 0; b < HIST_FINE + HIST_COARSE; b++) {
        n += hist[b];
    }
    if (n == 0) {
        return 0;
    }
    want = (uint64_t)(q * n + 0.999999);
    if (want < 1) {
        want = 1;
    }
    for (b = 0; b < HIST_FINE + HIST_COARSE; b++) {
        seen += hist[b];
        if (seen >= want) {
            return b < HIST_FINE ? b + 1.0
                                 : (b - HIST_FINE + 1) * 1000.0;
        }
    }
    return lat_max * 1e6;
}

static void complete(struct conn *c)
{
    size_t left = c->rlen - c->roff;

    if (left > 0) {
        /* depth is 1, so nothing should follow a complete response */
        fprintf(stderr, "loadgen: %zu unexpected bytes\n", left);
        exit(2);
    }
    c->rlen = c->roff = 0;
    tot.done++;
    t_last = now_sec();
    lat_note(c, t_last - c->t_req);
    if (c->type == REQ_GET) {
        tot.gets++;
        tot.get_keys += c->width;
        tot.hits += c->hits;
    } else {
        tot.sets++;
    }
    issue(c);
}

static void on_readable(struct conn *c)
{
    enum parse_result r;
    ssize_t n;

    if (c->rlen == c->rcap) {
        c->rcap *= 2;
        c->rbuf = realloc(c->rbuf, c->rcap);
        if (c->rbuf == NULL) {
            die("realloc");
        }
    }
    n = conn_read(c, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return;
    }
    if (n <= 0) {
        fprintf(stderr, "loadgen: connection %d closed by server\n", c->id);
        exit(2);
    }
    c->rlen += n;
    if (!c->busy) {
        fprintf(stderr, "loadgen: unsolicited bytes\n");
        exit(2);
    }
    if (opt.proto == PROTO_TEXT) {
        r = parse_text(c);
    } else if (opt.proto == PROTO_META) {
        r = parse_meta(c);
    } else {
        r = parse_binary(c);
    }
    if (r == PARSE_BROKEN) {
        fprintf(stderr, "loadgen: cannot parse reply: %.40s\n",
                c->rbuf + c->roff);
        exit(2);
    }
    if (r == PARSE_DONE) {
        complete(c);
    }
}

/*
 * Wait mode (-W): poll the server with "version" until it answers or the
 * deadline passes.  Used by the harness instead of a bare sleep.
 */
static int wait_for_server(void)
{
    double deadline = now_sec() + opt.wait;
    struct timeval tv = { 0, 200000 };
    char buf[256];

    while (now_sec() < deadline) {
        int fd = connect_to_server(0);
        ssize_t n = -1;

        if (fd >= 0) {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            if (write(fd, "version\r\n", 9) == 9) {
                n = read(fd, buf, sizeof(buf) - 1);
            }
            close(fd);
            if (n > 8 && memcmp(buf, "VERSION ", 8) == 0) {
                return 0;
            }
        }
        usleep(20000);
    }
    fprintf(stderr, "loadgen: no answer on %s:%d\n", opt.host, opt.port);
    return 1;
}

/*
 * Lag probe (-Y): one blocking connection to each node of a pair.  Each
 * probe stores a new unique 24-byte value under one probe key on node A
 * (-p), then polls node B (-Y) with "mg <key> v" back to back until B
 * returns that value.  The lag is the time from just before the set is
 * written to A until B's reply with the value is read; ack_lag starts
 * when A's STORED has been read instead.  The resolution is one poll
 * round trip to B.  A probe not seen within 1 s counts as a timeout.
 */
struct rd {
    int fd;
    char buf[4096];
    size_t len;
};

static void rd_fill(struct rd *r)
{
    ssize_t n;

    if (r->len == sizeof(r->buf)) {
        fprintf(stderr, "loadgen: probe reply too long\n");
        exit(2);
    }
    n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
    if (n < 0 && errno == EINTR) {
        return;
    }
    if (n <= 0) {
        fprintf(stderr, "loadgen: probe connection: %s\n",
                n == 0 ? "closed" : strerror(errno));
        exit(2);
    }
    r->len += n;
}

/* Read one CRLF line (returned NUL-terminated in out, CRLF dropped). */
static void rd_line(struct rd *r, char *out, size_t outsz)
{
    char *eol;
    size_t n;

    while ((eol = memmem(r->buf, r->len, "\r\n", 2)) == NULL) {
        rd_fill(r);
    }
    n = eol - r->buf;
    if (n >= outsz) {
        n = outsz - 1;
    }
    memcpy(out, r->buf, n);
    out[n] = '\0';
    n = eol - r->buf + 2;
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
}

static void rd_bytes(struct rd *r, char *out, size_t n)
{
    while (r->len < n) {
        rd_fill(r);
    }
    memcpy(out, r->buf, n);
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            die("probe write");
        }
        p += w;
        n -= w;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double q)
{
    size_t i;

    if (n == 0) {
        return 0;
    }
    i = (size_t)(q * n + 0.999999);
    i = i < 1 ? 0 : i - 1;
    return v[i < n ? i : n - 1];
}

static int lag_probe(void)
{
    struct rd a = { 0 }, b = { 0 };
    struct timeval tv = { 2, 0 };
    uint64_t n = opt.count, i, polls = 0, timeouts = 0;
    double *lag = xmalloc(n * sizeof(double));
    double *ack = xmalloc(n * sizeof(double));
    double *rtt = xmalloc(n * sizeof(double));
    char key[KEY_MAX], val[48], got[64], line[256], cmd[128];
    int klen, clen;
    unsigned tag = (unsigned)getpid();
    double hard_end = now_sec() + opt.time_limit;

    a.fd = connect_to_port(opt.port, 0);
    b.fd = connect_to_port(opt.probe_port, 0);
    if (a.fd < 0 || b.fd < 0) {
        die("probe connect");
    }
    setsockopt(a.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(b.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    klen = snprintf(key, sizeof(key), "lagprobe:%u", tag);
    clen = snprintf(cmd, sizeof(cmd), "mg %s v\r\n", key);
    for (i = 0; i < n && now_sec() < hard_end; i++) {
        char set[160];
        int sl;
        double t0, t1, t2;
        int seen = 0;

        snprintf(val, sizeof(val), "probe%011llu%08x",
                 (unsigned long long)i, tag);
        sl = snprintf(set, sizeof(set), "set %.*s 0 0 24\r\n%s\r\n",
                      klen, key, val);
        t0 = now_sec();
        write_all(a.fd, set, sl);
        rd_line(&a, line, sizeof(line));
        t1 = now_sec();
        if (strcmp(line, "STORED") != 0) {
            fprintf(stderr, "loadgen: probe set: %s\n", line);
            exit(2);
        }
        for (;;) {
            unsigned long len;

            write_all(b.fd, cmd, clen);
            rd_line(&b, line, sizeof(line));
            polls++;
            t2 = now_sec();
            if (sscanf(line, "VA %lu", &len) == 1) {
                if (len + 2 > sizeof(got)) {
                    fprintf(stderr, "loadgen: probe value too long\n");
                    exit(2);
                }
                rd_bytes(&b, got, len + 2);
                if (len == 24 && memcmp(got, val, 24) == 0) {
                    seen = 1;
                    break;
                }
            } else if (strncmp(line, "EN", 2) != 0) {
                fprintf(stderr, "loadgen: probe poll: %s\n", line);
                exit(2);
            }
            if (t2 - t0 > 1.0) {
                break;
            }
        }
        timeouts += !seen;
        lag[i] = (t2 - t0) * 1e6;
        ack[i] = (t2 - t1) * 1e6;
        rtt[i] = (t1 - t0) * 1e6;
        if (opt.probe_gap > 0) {
            struct timespec ts;

            ts.tv_sec = (time_t)opt.probe_gap;
            ts.tv_nsec = (long)((opt.probe_gap - ts.tv_sec) * 1e9);
            nanosleep(&ts, NULL);
        }
    }
    n = i;
    qsort(lag, n, sizeof(double), cmp_double);
    qsort(ack, n, sizeof(double), cmp_double);
    qsort(rtt, n, sizeof(double), cmp_double);
    printf("probes=%llu timeouts=%llu polls=%llu lag_p50_us=%.1f "
           "lag_p99_us=%.1f lag_max_us=%.1f ack_lag_p50_us=%.1f "
           "ack_lag_p99_us=%.1f ack_lag_max_us=%.1f set_p50_us=%.1f "
           "set_p99_us=%.1f\n",
           (unsigned long long)n, (unsigned long long)timeouts,
           (unsigned long long)polls, pct(lag, n, 0.5), pct(lag, n, 0.99),
           n ? lag[n - 1] : 0.0, pct(ack, n, 0.5), pct(ack, n, 0.99),
           n ? ack[n - 1] : 0.0, pct(rtt, n, 0.5), pct(rtt, n, 0.99));
    return timeouts > 0 ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr,
        "usage: loadgen -p PORT [options]\n"
        "  -H HOST    server address, loopback only (127.0.0.1)\n"
        "  -c N       connections, one request in flight each (1)\n"
        "  -k N       key space key:00000000 .. N-1 (100000)\n"
        "  -v BYTES   value size (1024)\n"
        "  -g RATIO   fraction of requests that are gets (0.9)\n"
        "  -w N       keys per get, multi-get when > 1 (1)\n"
        "  -P PROTO   text, binary or meta (text)\n"
        "  -d SEC     issue requests for SEC seconds\n"
        "  -n N       issue N requests in all\n"
        "  -L         preload: set each key once, then stop\n"
        "  -T SEC     hard limit on the whole run (300)\n"
        "  -s SEED    PRNG seed (1)\n"
        "  -W SEC     only wait until the server answers 'version'\n"
        "  -r OPS     rate limit: OPS requests/s over all connections\n"
        "  -l         also print latency percentiles (us)\n"
        "  -O FILE    write 'origin_us latency_us g|s' per request\n"
        "  -Y PORT    lag probe: set a probe key on -p, poll the pair's\n"
        "             other node on PORT with mg until it returns the\n"
        "             value; -n probes (2000), -i gap between them\n"
        "  -i USEC    lag probe: pause between probes (1000)\n"
        "  -S         TLS on the load connections (OpenSSL; -W and -Y\n"
        "             stay plain)\n"
        "SIGINT or SIGTERM ends a load run early, with its summary.\n"
        "prints: requests= gets= sets= get_keys= hits= misses= errors=\n"
        "        elapsed= rps=\n"
        "  with -l: latency_us p50= p90= p99= p999= max= mean=\n"
        "  with -Y: probes= timeouts= polls= lag_p50_us= lag_p99_us=\n"
        "        lag_max_us= ack_lag_p50_us= ack_lag_p99_us=\n"
        "        ack_lag_max_us= set_p50_us=\n");
    exit(2);
}

static enum proto parse_proto(const char *s)
{
    if (strcmp(s, "text") == 0) {
        return PROTO_TEXT;
    }
    if (strcmp(s, "binary") == 0) {
        return PROTO_BINARY;
    }
    if (strcmp(s, "meta") == 0) {
        return PROTO_META;
    }
    usage();
    return PROTO_TEXT;
}

static void parse_args(int argc, char **argv)
{
    int ch;

    opt.host = "127.0.0.1";
    opt.conns = 1;
    opt.keys = 100000;
    opt.value_len = 1024;
    opt.get_ratio = 0.9;
    opt.width = 1;
    opt.time_limit = 300;
    opt.seed = 1;
    opt.probe_gap = 0.001;
    while ((ch = getopt(argc, argv, "p:H:c:k:v:g:w:P:d:n:LT:s:W:r:lO:Y:i:S"))
           != -1) {
        switch (ch) {
        case 'p': opt.port = atoi(optarg); break;
        case 'H': opt.host = optarg; break;
        case 'c': opt.conns = atoi(optarg); break;
        case 'k': opt.keys = strtoul(optarg, NULL, 10); break;
        case 'v': opt.value_len = strtoul(optarg, NULL, 10); break;
        case 'g': opt.get_ratio = atof(optarg); break;
        case 'w': opt.width = atoi(optarg); break;
        case 'P': opt.proto = parse_proto(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'n': opt.count = strtoull(optarg, NULL, 10); break;
        case 'L': opt.preload = 1; break;
        case 'T': opt.time_limit = atof(optarg); break;
        case 's': opt.seed = strtoull(optarg, NULL, 10); break;
        case 'W': opt.wait = atof(optarg); break;
        case 'S': opt.tls = 1; break;
        case 'r': opt.rate = atof(optarg); break;
        case 'l': opt.latency = 1; break;
        case 'O': opt.dump = optarg; break;
        case 'Y': opt.probe_port = atoi(optarg); break;
        case 'i': opt.probe_gap = atof(optarg) / 1e6; break;
        default: usage();
        }
    }
    if (opt.port <= 0 || opt.conns < 1 || opt.keys < 1 || opt.width < 1
        || opt.width > MAX_WIDTH || opt.time_limit <= 0) {
        usage();
    }
    if (!host_is_loopback(opt.host)) {
        fprintf(stderr, "loadgen: %s is not a loopback address\n",
                opt.host);
        exit(2);
    }
    if (opt.probe_port > 0 && opt.count == 0) {
        opt.count = 2000;
    }
    if (!opt.preload && opt.wait <= 0 && opt.duration <= 0
        && opt.count == 0) {
        fprintf(stderr, "loadgen: give -d, -n or -L\n");
        exit(2);
    }
}

static void print_summary(void)
{
    double elapsed = t_last > t_start ? t_last - t_start : 0;

    printf("requests=%llu gets=%llu sets=%llu get_keys=%llu hits=%llu "
           "misses=%llu errors=%llu elapsed=%.6f rps=%.1f\n",
           (unsigned long long)tot.done, (unsigned long long)tot.gets,
           (unsigned long long)tot.sets, (unsigned long long)tot.get_keys,
           (unsigned long long)tot.hits,
           (unsigned long long)(tot.get_keys - tot.hits),
           (unsigned long long)tot.errors, elapsed,
           elapsed > 0 ? tot.done / elapsed : 0.0);
    if (opt.latency) {
        printf("latency_us p50=%.0f p90=%.0f p99=%.0f p999=%.0f max=%.0f "
               "mean=%.1f\n", hist_quantile(0.50), hist_quantile(0.90),
               hist_quantile(0.99), hist_quantile(0.999), lat_max * 1e6,
               tot.done ? lat_sum * 1e6 / tot.done : 0.0);
    }
}

/* -O: "origin_us latency_us type" per request, origin on CLOCK_MONOTONIC
 * (the clock of Time::HiRes::clock_gettime(CLOCK_MONOTONIC) in perl). */
static void write_dump(void)
{
    FILE *f;
    size_t i;

    if (opt.dump == NULL) {
        return;
    }
    f = fopen(opt.dump, "w");
    if (f == NULL) {
        die(opt.dump);
    }
    for (i = 0; i < nrecs; i++) {
        fprintf(f, "%.1f %.1f %c\n", recs[i].t * 1e6, recs[i].us,
                recs[i].type);
    }
    if (fclose(f) != 0) {
        die(opt.dump);
    }
}

static void run(void)
{
    struct epoll_event evs[MAX_EVENTS];
    struct conn **conns = xmalloc(sizeof(*conns) * opt.conns);
    double hard_end;
    int i, n;

    for (i = 0; i < opt.conns; i++) {
        conns[i] = conn_new(i);
    }
    if (opt.rate > 0) {
        struct epoll_event ev;

        idle = xmalloc(sizeof(*idle) * opt.conns);
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);     /* wake on the slot */
        timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
        if (timer_fd < 0) {
            die("timerfd_create");
        }
        ev.events = EPOLLIN;
        ev.data.ptr = NULL;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, timer_fd, &ev) < 0) {
            die("epoll_ctl");
        }
    }
    {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    t_start = t_last = now_sec();
    next_slot = t_start;
    hard_end = t_start + opt.time_limit;
    for (i = 0; i < opt.conns; i++) {
        conns[i]->busy = 1;
        inflight++;
        issue(conns[i]);
    }
    while (inflight > 0) {
        n = epoll_wait(epfd, evs, MAX_EVENTS, 100);
        if (n < 0 && errno != EINTR) {
            die("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;

            if (c == NULL) {
                on_timer();
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                try_write(c);
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                on_readable(c);
            }
        }
        if (now_sec() > hard_end) {
            fprintf(stderr, "loadgen: time limit hit, %d in flight\n",
                    inflight);
            print_summary();
            write_dump();
            exit(3);
        }
        while (stop_now && nidle > 0) {
            issue(idle[--nidle]);       /* releases it: may_issue() is 0 */
        }
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (opt.wait > 0) {
        return wait_for_server();
    }
    value_buf = xmalloc(opt.value_len + 2);
    memset(value_buf, 'x', opt.value_len);
    memcpy(value_buf + opt.value_len, "\r\n", 2);
    hist = calloc(HIST_FINE + HIST_COARSE, sizeof(*hist));
    if (hist == NULL) {
        die("calloc");
    }
    if (opt.probe_port > 0) {
        return lag_probe();
    }
    epfd = epoll_create1(0);
    if (epfd < 0) {
        die("epoll_create1");
    }
    run();
    print_summary();
    write_dump();
    return tot.errors > 0 ? 1 : 0;
}
