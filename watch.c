/*
 * watch.c - log streaming for `watch`.  A worker that handles a request
 * formats one line and appends it to the buffer of every watcher whose
 * categories match, then wakes that watcher's connection; the watcher's
 * own worker moves the buffer into its reply queue and sends it.  With no
 * watchers, the cost on the request path is one load of watch_mask.
 *
 * Locking: watch_lock guards the watcher list and their buffers; it is a
 * leaf lock (taken last, nothing taken inside it but libevent's own).
 */
#include "memcached.h"
#include "watch.h"
#include "conn.h"
#include "conn_reply.h"
#include "settings.h"
#include "thread.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

struct watcher {
    struct conn *c;             /* the watching connection */
    unsigned flags;             /* WATCH_* categories */
    char *buf;                  /* pending lines */
    size_t len;                 /* bytes pending */
    size_t cap;                 /* bytes allocated (watcher_logbuf_size) */
    uint64_t skipped;           /* lines lost since the last one queued */
    struct watcher *next;       /* list link */
};

unsigned watch_mask;
static struct watcher *watchers;
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t gid;            /* line counter, under watch_lock */
static uint64_t nwatchers;
static uint64_t lines_sent;
static uint64_t lines_skipped;

static void recompute_mask(void)
{
    struct watcher *w;
    unsigned m = 0;

    for (w = watchers; w != NULL; w = w->next) {
        m |= w->flags;
    }
    __atomic_store_n(&watch_mask, m, __ATOMIC_RELAXED);
}

bool watch_parse(char **args, int nargs, unsigned *flags)
{
    static const struct {
        const char *name;
        unsigned flag;
    } names[] = {
        {"fetchers", WATCH_FETCHERS}, {"mutations", WATCH_MUTATIONS},
        {"evictions", WATCH_EVICTIONS}, {"rawcmds", WATCH_RAWCMDS},
        {"sysevents", WATCH_SYSEVENTS}, {"connevents", WATCH_CONNEVENTS},
    };
    int i;
    size_t k;

    *flags = nargs == 0 ? WATCH_FETCHERS : 0;
    for (i = 0; i < nargs; i++) {
        bool found = false;
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            if (strcmp(args[i], names[k].name) == 0) {
                *flags |= names[k].flag;
                found = true;
            }
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

void watch_add(struct conn *c, unsigned flags)
{
    struct watcher *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        return;
    }
    w->c = c;
    w->flags = flags;
    w->cap = (size_t)settings.watcher_logbuf_size;
    w->buf = malloc(w->cap);
    if (w->buf == NULL) {
        free(w);
        return;
    }
    pthread_mutex_lock(&watch_lock);
    w->next = watchers;
    watchers = w;
    nwatchers++;
    recompute_mask();
    pthread_mutex_unlock(&watch_lock);
}

void watch_remove(struct conn *c)
{
    struct watcher **pp;

    pthread_mutex_lock(&watch_lock);
    for (pp = &watchers; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->c == c) {
            struct watcher *w = *pp;
            *pp = w->next;
            free(w->buf);
            free(w);
            nwatchers--;
            break;
        }
    }
    recompute_mask();
    pthread_mutex_unlock(&watch_lock);
}

void watch_flush(struct conn *c)
{
    struct watcher *w;

    pthread_mutex_lock(&watch_lock);
    for (w = watchers; w != NULL; w = w->next) {
        if (w->c == c && w->len > 0) {
            conn_out(c, w->buf, w->len);
            w->len = 0;
            break;
        }
    }
    pthread_mutex_unlock(&watch_lock);
}

/* Room for a line of n bytes in w's buffer, after the "skipped=N" line
 * memcached puts (with no time stamp) before the first line that fits
 * again once lines were lost.  Under watch_lock. */
static bool make_room(struct watcher *w, size_t n)
{
    char skip[40];
    int sn = 0;

    if (w->skipped > 0) {
        sn = snprintf(skip, sizeof(skip), "skipped=%llu\n",
                      (unsigned long long)w->skipped);
    }
    if (w->len + (size_t)sn + n > w->cap) {
        return false;
    }
    if (sn > 0) {
        memcpy(w->buf + w->len, skip, (size_t)sn);
        w->len += (size_t)sn;
        w->skipped = 0;
    }
    return true;
}

/* Append line to every watcher of category flag and wake them. */
static void publish(unsigned flag, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void publish(unsigned flag, const char *fmt, ...)
{
    char line[1024], head[64];
    struct timeval tv;
    struct watcher *w;
    va_list ap;
    int hn, n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return;
    }
    gettimeofday(&tv, NULL);
    pthread_mutex_lock(&watch_lock);
    /* memcached prints the microseconds without zero padding. */
    hn = snprintf(head, sizeof(head), "ts=%ld.%ld gid=%llu ",
                  (long)tv.tv_sec, (long)tv.tv_usec,
                  (unsigned long long)++gid);
    for (w = watchers; w != NULL; w = w->next) {
        if (!(w->flags & flag)) {
            continue;
        }
        size_t before = w->len;
        if (!make_room(w, (size_t)(hn + n))) {
            w->skipped++;
            lines_skipped++;
            continue;
        }
        memcpy(w->buf + w->len, head, (size_t)hn);
        memcpy(w->buf + w->len + hn, line, (size_t)n);
        if (before == 0) {
            /* First line since the last flush: wake the owning worker. */
            workers_wake_watchers(w->c->thread);
        }
        w->len += (size_t)(hn + n);
        lines_sent++;
    }
    pthread_mutex_unlock(&watch_lock);
}

void watch_fetch(const char *key, size_t nkey, const struct item *it,
                 const char *status, int cfd)
{
    char k[KEY_MAX_LENGTH * 3 + 1];

    if (nkey > KEY_MAX_LENGTH) {
        return;
    }
    (void)util_url_encode(key, nkey, k);
    publish(WATCH_FETCHERS,
            "type=item_get key=%s status=%s clsid=%u cfd=%d size=%u\n", k,
            status, it ? it->slabs_clsid : 0u, cfd,
            it ? it->nbytes - 2 : 0u);
}

void watch_store(const char *key, size_t nkey, const char *status,
                 const char *cmd, int64_t ttl, unsigned clsid, int cfd,
                 size_t size)
{
    char k[KEY_MAX_LENGTH * 3 + 1];

    if (nkey > KEY_MAX_LENGTH) {
        return;
    }
    (void)util_url_encode(key, nkey, k);
    publish(WATCH_MUTATIONS,
            "type=item_store key=%s status=%s cmd=%s ttl=%lld clsid=%u "
            "cfd=%d size=%zu\n", k, status, cmd, (long long)ttl, clsid, cfd,
            size);
}

void watch_eviction(const struct item *it)
{
    char k[KEY_MAX_LENGTH * 3 + 1];

    if (!(watch_mask & WATCH_EVICTIONS)) {
        return;
    }
    (void)util_url_encode(ITEM_key(it), it->nkey, k);
    publish(WATCH_EVICTIONS,
            "type=eviction key=%s fetch=%s ttl=%lld la=%d clsid=%u "
            "size=%u\n", k, (it->it_flags & ITEM_FETCHED) ? "yes" : "no",
            it->exptime ? (long long)it->exptime - current_time : -1LL,
            (int)(current_time - it->atime), it->slabs_clsid,
            it->nbytes > 2 ? it->nbytes - 2 : 0u);
}

void watch_store_item(const struct item *it, enum store_mode mode,
                      enum store_result r, int cfd)
{
    static const char *const cmds[] = {
        "set", "add", "replace", "append", "prepend", "cas"
    };
    static const char *const results[] = {
        "stored", "not_stored", "exists", "not_found", "no_memory"
    };

    watch_store(ITEM_key(it), it->nkey, results[r], cmds[mode],
                it->exptime == 0 ? 0 : util_ttl_left(it->exptime,
                                                     current_time),
                it->slabs_clsid, cfd, it->nbytes - 2);
}

void watch_fetch_peek(const char *key, size_t nkey, int cfd)
{
    struct item *it = item_peek(key, nkey);

    watch_fetch(key, nkey, it, it != NULL ? "found" : "not_found", cfd);
    if (it != NULL) {
        item_remove(it);
    }
}

/* memcached's address fields: rip/rport of a TCP peer, "unix" and 0 for
 * a unix socket; transport local, tcp or udp. */
void watch_conn_event(bool opened, int sfd, enum conn_transport t,
                      int reason)
{
    static const char *const transports[] = {"tcp", "local", "udp"};
    static const char *const reasons[] = {
        "error", "normal", "idle_timeout", "shutdown"
    };
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char rip[INET6_ADDRSTRLEN] = "unix";
    unsigned port = 0;

    if (t == CT_TCP &&
        getpeername(sfd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, rip, sizeof(rip));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, rip, sizeof(rip));
            port = ntohs(a->sin6_port);
        }
    }
    if (opened) {
        publish(WATCH_CONNEVENTS, "type=conn_new rip=%s rport=%u "
                "transport=%s cfd=%d\n", rip, port, transports[t], sfd);
    } else {
        publish(WATCH_CONNEVENTS, "type=conn_close rip=%s rport=%u "
                "transport=%s reason=%s cfd=%d\n", rip, port,
                transports[t], reasons[reason & 3], sfd);
    }
}

uint64_t watch_count(void)
{
    return __atomic_load_n(&nwatchers, __ATOMIC_RELAXED);
}

uint64_t watch_sent(void)
{
    return __atomic_load_n(&lines_sent, __ATOMIC_RELAXED);
}

uint64_t watch_skipped(void)
{
    return __atomic_load_n(&lines_skipped, __ATOMIC_RELAXED);
}
