/*
 * fuzz_conn.c - the server behind every libFuzzer harness: the storage of
 * memcached.c's start_storage(), one worker event base set up as thread.c
 * does but run by hand on the fuzzer's thread, and a conn.c connection on
 * one end of a socketpair.  No protocol logic lives here: bytes go in
 * through read(2) and out through sendmsg(), as for a real client.
 */
#include "memcached.h"
#include "assoc.h"
#include "conn.h"
#include "conn_admin.h"
#include "conn_udp.h"
#include "crawler.h"
#include "items.h"
#include "proto.h"
#include "authfile.h"
#include "sasl.h"
#include "slabs.h"
#include "stats.h"
#include "item_locks.h"
#include "thread.h"
#include "util.h"
#include "fuzz/fuzz_conn.h"
#include "fuzz/fuzz_storage.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FUZZ_MAXBYTES (16 * 1024 * 1024)    /* -m 16 */
#define FUZZ_MAXFDS 4096                    /* conn table slots */
#define PUMP_MAX_ROUNDS 100000              /* a hang, not a slow input */
#define PUMP_IDLE_ROUNDS 3                  /* rounds without progress */

static struct worker worker;            /* the one worker, never started */
static struct settings base_settings;   /* settings before any input */
static bool echo;                       /* FUZZ_CONN_ECHO: replies to stdout */
static char pwdb[] = "/tmp/paircached-fuzz-pwdb-XXXXXX";

/* --- set-up, once ---------------------------------------------------------
 * Everything a worker thread has except its thread: the event base, the
 * notify pipe (watch wake-ups arrive there) and the replication push
 * event, which never fires because replication is off. */

static void notify_cb(evutil_socket_t fd, short which, void *arg)
{
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    ssize_t i;

    (void)which;
    for (i = 0; i < n; i++) {
        if (buf[i] == 'w') {
            conn_watch_wake(arg);
        }
    }
}

static void noop_cb(evutil_socket_t fd, short which, void *arg)
{
    (void)fd;
    (void)which;
    (void)arg;
}

static void noop_shutdown(bool graceful)
{
    (void)graceful;
}

static void worker_init(void)
{
    int fds[2];

    worker.base = event_base_new();
    if (worker.base == NULL || event_base_priority_init(worker.base, 3) ||
        pipe(fds) != 0) {
        abort();
    }
    worker.stats = stats_thread(0);
    worker.notify_rd = fds[0];
    worker.notify_wr = fds[1];
    evutil_make_socket_nonblocking(fds[0]);
    evutil_make_socket_nonblocking(fds[1]);
    pthread_mutex_init(&worker.q_lock, NULL);
    worker.notify_ev = event_new(worker.base, fds[0], EV_READ | EV_PERSIST,
                                 notify_cb, &worker);
    worker.repl_ev = event_new(worker.base, -1, 0, noop_cb, NULL);
    worker.sync_timer = event_new(worker.base, -1, EV_PERSIST, noop_cb,
                                  NULL);
    if (worker.notify_ev == NULL || worker.repl_ev == NULL ||
        worker.sync_timer == NULL || event_add(worker.notify_ev, NULL)) {
        abort();
    }
    tstats = worker.stats;
}

static void pwdb_remove(void)
{
    unlink(pwdb);
}

/* Users for -S and -Y: -Y's file is read once; SASL (Cyrus with PLAIN
 * only, as no memcached.conf is found, or the built-in PLAIN) reads the
 * password file at each check, so it stays until exit. */
static void pwdb_init(void)
{
    static const char users[] = "fuzz:secret\nuser:pass word\n";
    int fd = mkstemp(pwdb);

    if (fd < 0 || write(fd, users, sizeof(users) - 1) !=
                      (ssize_t)(sizeof(users) - 1)) {
        abort();
    }
    close(fd);
    atexit(pwdb_remove);
    unsetenv("SASL_CONF_PATH");
    if (authfile_load(pwdb) != 0 || sasl_setup() != 0) {
        abort();
    }
}

void fuzz_conn_init(void)
{
    static bool done;

    if (done) {
        return;
    }
    done = true;
    echo = getenv("FUZZ_CONN_ECHO") != NULL;
    signal(SIGPIPE, SIG_IGN);
    settings_init();
    settings.maxbytes = FUZZ_MAXBYTES;
    settings.num_threads = 1;
    settings.lru_crawler = false;       /* no thread behind our back */
    settings.slab_reassign = false;     /* no mover thread either */
    settings.shutdown_command = true;   /* reach process_shutdown */
    settings.sasl_pwdb = pwdb;
    util_clock_init();
    pwdb_init();
    if (stats_init(1) != 0 || conn_init(FUZZ_MAXFDS) != 0 ||
        item_locks_init(FUZZ_HASHPOWER) != 0) {
        abort();
    }
    worker_init();
    proto_shutdown_fn = noop_shutdown;
    base_settings = settings;
}

/* --- per input -----------------------------------------------------------
 * Each input starts from the same server: fresh slabs, hash table, LRUs
 * and version clock, stats zeroed, settings as at start (verbosity,
 * cache_memlimit, stats detail and lru_crawler commands change them),
 * and a few keys stored so that a single read can hit. */

static void put(const char *key, const char *val, size_t n, uint32_t flags)
{
    enum alloc_result why;
    uint64_t cas = 0;
    struct item *it = item_alloc(key, strlen(key), flags, 0, n + 2, &why);

    if (it == NULL) {
        abort();
    }
    memcpy(ITEM_data(it), val, n);
    memcpy(ITEM_data(it) + n, "\r\n", 2);
    item_store(it, STORE_MODE_SET, &cas);
    item_remove(it);
}

static void storage_reset(void)
{
    static char big[3000];

    fuzz_storage_reset(1);
    memset(big, 'x', sizeof(big));
    put("foo", "bar", 3, 0);
    put("n", "42", 2, 5);
    put("big", big, sizeof(big), 0);
}

static void server_reset(const struct fuzz_mode *m)
{
    crawler_stop();             /* `lru_crawler enable` started it */
    settings = base_settings;
    settings.binding_protocol = m->proto;
    settings.sasl = m->sasl;
    settings.auth_file = m->text_auth ? pwdb : NULL;
    stats_reset();
    storage_reset();
}

/* What tells one turn of the loop from the next: if none of it changes
 * and nothing was sent for a few turns, the conn waits for input. */
struct snap {
    enum conn_state state;      /* conn state */
    size_t rbytes;              /* unparsed bytes */
    size_t left;                /* value bytes still to read */
    size_t sbytes;              /* bytes still to swallow */
    int iovdone;                /* reply pieces sent */
    int iovused;                /* reply pieces queued */
    uint64_t digest_next;       /* digest walk position */
    uint64_t dump_next;         /* metadump walk position */
    int unread;                 /* bytes in the socket, not read yet */
};

static void snap_take(const struct conn *c, struct snap *s)
{
    s->state = c->state;
    s->rbytes = c->rbytes;
    s->left = c->nr.left;
    s->sbytes = c->sbytes;
    s->iovdone = c->iovdone;
    s->iovused = c->iovused;
    s->digest_next = c->digest.next;
    s->dump_next = c->dump.next;
    s->unread = 0;
    if (c->state != CONN_CLOSED && ioctl(c->sfd, FIONREAD, &s->unread)) {
        s->unread = -1;
    }
}

static bool snap_same(const struct snap *a, const struct snap *b)
{
    return a->state == b->state && a->rbytes == b->rbytes &&
           a->left == b->left && a->sbytes == b->sbytes &&
           a->iovdone == b->iovdone && a->iovused == b->iovused &&
           a->digest_next == b->digest_next &&
           a->dump_next == b->dump_next && a->unread == b->unread;
}

/* Read the server's replies and drop them (or, with FUZZ_CONN_ECHO set,
 * copy them to stdout to see what an input does); returns the count. */
static size_t drain(int peer)
{
    static char buf[65536];
    size_t total = 0;

    for (;;) {
        ssize_t n = read(peer, buf, sizeof(buf));
        if (n > 0) {
            total += (size_t)n;
            if (echo && fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
                abort();
            }
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return total;
        }
    }
}

/* A conn that waits for input with nothing left to send must not be
 * registered for EV_WRITE: that event fires on every loop turn, and the
 * worker spins (issue #15).  Such a stall is a crash here. */
static void check_not_spinning(const struct conn *c)
{
    if (c->state != CONN_CLOSED && c->state != CONN_WRITE &&
        c->state != CONN_DIGEST && c->state != CONN_DUMP &&
        c->iovdone == c->iovused &&
        (c->ev_flags & EV_WRITE) != 0) {
        fprintf(stderr, "fuzz_conn: conn in state %s waits for input "
                "registered for EV_WRITE: busy loop\n",
                conn_state_name(c->state));
        abort();
    }
}

/* Run the worker's loop until the conn is closed or makes no progress.
 * Returns false when nothing at all happened. */
static bool pump(struct conn *c, int peer)
{
    bool moved = false;
    int idle = 0;
    int i;

    for (i = 0; i < PUMP_MAX_ROUNDS && idle < PUMP_IDLE_ROUNDS; i++) {
        struct snap before, after;
        size_t out;

        if (c->state == CONN_CLOSED) {
            break;
        }
        snap_take(c, &before);
        event_base_loop(worker.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        out = drain(peer);
        snap_take(c, &after);
        if (out == 0 && snap_same(&before, &after)) {
            idle++;
        } else {
            idle = 0;
            moved = true;
        }
    }
    drain(peer);
    check_not_spinning(c);
    return moved;
}

static void send_chunk(struct conn *c, int peer, const uint8_t *p,
                       size_t n)
{
    while (n > 0 && c->state != CONN_CLOSED) {
        ssize_t k = write(peer, p, n);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k < 0 && errno == EINTR) {
            continue;
        } else if (k < 0 && errno == EAGAIN) {
            if (!pump(c, peer)) {
                return;         /* the server stopped reading */
            }
        } else {
            return;
        }
    }
    pump(c, peer);
}

void fuzz_conn_run(const struct fuzz_mode *m, const uint8_t *data,
                   size_t size)
{
    size_t cut1 = size / 3;
    size_t cut2 = size - size / 3;
    struct conn *c;
    int fds[2];

    server_reset(m);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   fds) != 0) {
        abort();
    }
    c = conn_new(fds[0], CONN_READ, &worker, worker.base);
    if (c == NULL) {
        abort();
    }
    c->transport = CT_UNIX;
    /* Three writes, each served before the next: requests and values
     * split across reads. */
    send_chunk(c, fds[1], data, cut1);
    send_chunk(c, fds[1], data + cut1, cut2 - cut1);
    send_chunk(c, fds[1], data + cut2, size - cut2);
    shutdown(fds[1], SHUT_WR);
    pump(c, fds[1]);
    if (c->state != CONN_CLOSED) {
        conn_close(c);
    }
    close(fds[1]);
}

/* --- UDP -------------------------------------------------------------------
 * The input is a series of datagrams, each a 2-byte big-endian length and
 * that many bytes (the last takes what is left), sent to the UDP port's
 * conn on a datagram socketpair; the peer end is bound to an abstract
 * address so that replies have somewhere to go. */
void fuzz_conn_run_udp(const uint8_t *data, size_t size)
{
    static const struct fuzz_mode mode = {PROTO_AUTO, false, false};
    sa_family_t fam = AF_UNIX;
    struct conn *c;
    int fds[2];

    server_reset(&mode);
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   fds) != 0 ||
        bind(fds[1], (struct sockaddr *)&fam, sizeof(fam)) != 0) {
        abort();
    }
    c = conn_new(fds[0], CONN_READ, &worker, worker.base);
    if (c == NULL) {
        abort();
    }
    c->transport = CT_UDP;
    if (conn_udp_adopt(c) != 0) {
        abort();
    }
    while (size > 0) {
        size_t n = size;
        if (size >= 2) {
            n = (size_t)data[0] << 8 | data[1];
            data += 2;
            size -= 2;
            if (n > size) {
                n = size;
            }
        }
        if (write(fds[1], data, n) < 0 && errno != EAGAIN) {
            abort();
        }
        data += n;
        size -= n;
        pump(c, fds[1]);
    }
    conn_close(c);
    close(fds[1]);
}
