/*
 * conn_admin.c - connections serving a long reply a slice at a time:
 * watchers' log lines (watch), lru_crawler metadump and the pair digest
 * (stats replication digest), each paced by what the client reads.
 */
#include "memcached.h"
#include "conn.h"
#include "conn_internal.h"
#include "conn_admin.h"
#include "conn_reply.h"
#include "crawler.h"
#include "items_digest.h"
#include "replication.h"
#include "util.h"
#include "watch.h"

#include <event2/event.h>

/* A watcher only sends log lines; input is read and dropped so that a
 * closed peer is noticed.  Lines move from the watcher's buffer to the
 * socket one buffer at a time, the next only once the last is sent: a
 * watcher that does not read holds no more than its buffer
 * (watcher_logbuf_size) and the socket's, and loses the lines after
 * that (watch.c counts them). */
void conn_drive_watch(struct conn *c, bool readable)
{
    bool full = true;
    int turns;

    while (readable && full) {
        enum io_result r = conn_read_some(c, &full);
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
        switch (conn_transmit(c)) {
        case IO_DONE:
            conn_release_reply(c);
            continue;
        case IO_AGAIN:
            if (!conn_update_event(c, EV_READ | EV_WRITE | EV_PERSIST)) {
                conn_close(c);
            }
            return;
        default:
            conn_close(c);
            return;
        }
    }
    /* After 4 buffers in a row, come back once the others have run. */
    if (!conn_update_event(c, c->iovused > 0 || turns == 4
                             ? EV_READ | EV_WRITE | EV_PERSIST
                             : EV_READ | EV_PERSIST)) {
        conn_close(c);
    }
}

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
bool conn_dump_turn(struct conn *c)
{
    struct strbuf sb;
    unsigned empty = 0;
    bool done;

    if (c->iovdone < c->iovused) {
        if (repl_dirty) {
            repl_worker_push();     /* replies before the dump first */
        }
        switch (conn_transmit(c)) {
        case IO_DONE:
            break;
        case IO_AGAIN:
            return false;
        default:
            conn_close(c);
            return false;
        }
    }
    conn_release_reply(c);
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

void conn_digest_reply(struct conn *c)
{
    char line[128];
    int n = snprintf(line, sizeof(line),
                     "STAT digest %016llx\r\nSTAT digest_items %llu\r\n"
                     "END\r\n", (unsigned long long)c->digest.sum,
                     (unsigned long long)c->digest.count);

    conn_out(c, line, (size_t)n);
}

void conn_watch_wake(struct worker *w)
{
    struct conn *c = w->conns;

    while (c != NULL) {
        struct conn *next = c->wnext;
        if (c->state == CONN_WATCH) {
            conn_drive_watch(c, false);
        }
        c = next;
    }
}
