/*
 * proto_text_admin.c - the text protocol's commands that run the server
 * rather than store data: stats, flush_all, verbosity, cache_memlimit,
 * shutdown, refresh_certs, lru_crawler, lru, slabs, repl_wait, watch
 * (and debugtime in test builds).  proto_text.c dispatches here.
 */
#include "memcached.h"
#include "proto_text_admin.h"
#include "proto_text_internal.h"
#include "proto.h"
#include "replication.h"
#include "tls.h"
#include "conn.h"
#include "conn_admin.h"
#include "conn_sync.h"
#include "conn_reply.h"
#include "crawler.h"
#include "items.h"
#include "items_lru.h"
#include "log.h"
#include "settings.h"
#include "slab_mover.h"
#include "slabs.h"
#include "stats.h"
#include "util.h"
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PAIRCACHED_DEBUG_TIME
/* debugtime N|p|r, in test builds only (t/debug/memcached): memcached's
 * debug-build command that moves the clock N seconds on, or pauses and
 * resumes it, for memcached's expirations.t. */
static void process_debugtime(struct conn *c, const char *arg)
{
    int64_t d;

    if (strcmp(arg, "p") == 0) {
        util_clock_pause(true);
    } else if (strcmp(arg, "r") == 0) {
        util_clock_pause(false);
    } else if (safe_strtoll(arg, &d)) {
        util_clock_shift(d);
    } else {
        client_error(c, "ERROR");
        return;
    }
    reply(c, "OK");
}
#endif

/* A command that streams or holds its reply (watch, metadump, the
 * replication digest, repl_wait) needs a connection: over UDP it is
 * refused with an error, where memcached would leave the port stuck. */
static bool udp_refused(struct conn *c)
{
    if (c->transport != CT_UDP) {
        return false;
    }
    client_error(c, "CLIENT_ERROR not available over UDP");
    return true;
}

/* --- server commands ---------------------------------------------------------- */

static void process_flush_all(struct conn *c, struct token *t, int ntok)
{
    int32_t delay = 0;
    uint32_t when = 0;

    c->noreply = is_noreply(t, ntok);
    STAT_INCR(flush_cmds);
    if (!settings.flush_enabled) {
        client_error(c, "CLIENT_ERROR flush_all not allowed");
        return;
    }
    if (ntok != (c->noreply ? 2 : 1)) {
        if (!safe_strtol(t[1].value, &delay)) {
            client_error(c, "CLIENT_ERROR invalid exptime argument");
            return;
        }
    }
    if (delay > 0) {
        when = util_deadline(delay, current_time, process_started);
    }
    item_flush(when);
    if (when == 0) {
        /* Give the memory back now rather than at each key's next read;
         * a pass already running or queued covers it too. */
        crawler_crawl("all");
    }
    reply(c, "OK");
}

static void process_verbosity(struct conn *c, struct token *t, int ntok)
{
    uint32_t level;

    c->noreply = is_noreply(t, ntok);
    if (!safe_strtoul(t[1].value, &level)) {
        client_error(c, "CLIENT_ERROR bad command line format");
        return;
    }
    settings.verbose = level > 3 ? 3 : (int)level;
    reply(c, "OK");
}

/* refresh_certs: -Z's certificates reloaded for new connections (tls.c).
 * memcached's failure line is sent even with noreply. */
static void process_refresh_certs(struct conn *c, struct token *t, int ntok)
{
    char err[1024];

    c->noreply = is_noreply(t, ntok);
    if (tls_server_refresh(err, sizeof(err)) == 0) {
        reply(c, "OK");
        return;
    }
    log_warn("refresh_certs: %s", err);
    conn_out(c, err, strlen(err));
    conn_out_str(c, "\r\n");
}

static void process_memlimit(struct conn *c, struct token *t, int ntok)
{
    uint32_t mb;

    c->noreply = is_noreply(t, ntok);
    if (!safe_strtoul(t[1].value, &mb)) {
        client_error(c, "ERROR");
    } else if (mb < 8) {
        reply(c, "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m");
    } else if (mb > 1000000000) {
        reply(c, "MEMLIMIT_ADJUST_FAILED input value is megabytes not "
                 "bytes");
    } else {
        settings.maxbytes = (size_t)mb * 1024 * 1024;
        slabs_set_mem_limit(settings.maxbytes);
        reply(c, "OK");
    }
}

static void out_sb(struct conn *c, struct strbuf *sb)
{
    if (sb->oom) {
        reply(c, "SERVER_ERROR out of memory writing stats");
    } else if (sb->len > 0) {
        conn_out(c, sb->buf, sb->len);
    }
    sb_free(sb);
}

static void process_stats_detail(struct conn *c, const char *arg)
{
    struct strbuf sb;

    if (arg != NULL && strcmp(arg, "on") == 0) {
        settings.detail_enabled = true;
        reply(c, "OK");
    } else if (arg != NULL && strcmp(arg, "off") == 0) {
        settings.detail_enabled = false;
        reply(c, "OK");
    } else if (arg != NULL && strcmp(arg, "dump") == 0) {
        sb_init(&sb);
        stats_detail_dump(&sb);
        out_sb(c, &sb);
        conn_out_str(c, "END\r\n");
    } else {
        client_error(c, "CLIENT_ERROR usage: stats detail on|off|dump");
    }
}

static void process_stats(struct conn *c, struct token *t, int ntok)
{
    struct strbuf sb;
    const char *sub = ntok > 1 ? t[1].value : NULL;

    sb_init(&sb);
    if (sub == NULL) {
        stats_general(&sb);
    } else if (strcmp(sub, "reset") == 0) {
        stats_reset();
        reply(c, "RESET");
        return;
    } else if (strcmp(sub, "detail") == 0) {
        process_stats_detail(c, ntok > 2 ? t[2].value : NULL);
        return;
    } else if (strcmp(sub, "settings") == 0) {
        stats_settings(&sb);
    } else if (strcmp(sub, "items") == 0) {
        items_stats(&sb);
    } else if (strcmp(sub, "slabs") == 0) {
        stats_slabs(&sb);
    } else if (strcmp(sub, "sizes") == 0) {
        items_stats_sizes(&sb);
    } else if (strcmp(sub, "conns") == 0) {
        conn_stats(&sb, c);
    } else if (strcmp(sub, "extras") == 0) {
        stats_extras(&sb);
    } else if (strcmp(sub, "replication") == 0 && ntok == 3 &&
               strcmp(t[2].value, "digest") == 0) {
        sb_free(&sb);
        if (!udp_refused(c)) {
            conn_start_digest(c);
        }
        return;
    } else if (strcmp(sub, "replication") == 0) {
        repl_stats(&sb);
    } else if (strcmp(sub, "cachedump") == 0) {
        uint32_t id, limit;
        if (ntok != 4) {
            client_error(c, "CLIENT_ERROR bad command line");
            return;
        }
        if (!settings.dump_enabled) {
            client_error(c, "CLIENT_ERROR stats cachedump not allowed");
            return;
        }
        if (!safe_strtoul(t[2].value, &id) ||
            !safe_strtoul(t[3].value, &limit) ||
            !items_cachedump(id, limit, &sb)) {
            client_error(c, "CLIENT_ERROR Illegal slab id");
            return;
        }
    } else {
        client_error(c, "ERROR");
        return;
    }
    out_sb(c, &sb);
    conn_out_str(c, "END\r\n");
}

static void process_shutdown(struct conn *c, struct token *t, int ntok)
{
    if (!settings.shutdown_command) {
        client_error(c, "ERROR: shutdown not enabled");
        return;
    }
    if (ntok > 2 || (ntok == 2 && strcmp(t[1].value, "graceful") != 0)) {
        client_error(c, "CLIENT_ERROR invalid shutdown mode");
        return;
    }
    log_info("shutdown requested by a client");
    conn_close_after_write(c);
    c->close_reason = CLOSE_SHUTDOWN;
    if (proto_shutdown_fn != NULL) {
        proto_shutdown_fn(ntok == 2);
    }
}

static void process_lru_crawler(struct conn *c, struct token *t, int ntok)
{
    const char *sub = t[1].value;
    uint32_t v;

    if ((strcmp(sub, "crawl") == 0 || strcmp(sub, "metadump") == 0) &&
        ntok == 3 && !settings.lru_crawler) {
        client_error(c, "CLIENT_ERROR lru crawler disabled");
    } else if (strcmp(sub, "crawl") == 0 && ntok == 3) {
        switch (crawler_crawl(t[2].value)) {
        case CRAWLER_OK:
            reply(c, "OK");
            break;
        case CRAWLER_RUNNING:
            reply(c, "BUSY currently processing crawler request");
            break;
        case CRAWLER_BADCLASS:
            reply(c, "BADCLASS invalid class id");
            break;
        case CRAWLER_NOTSTARTED:
            reply(c, "NOTSTARTED no items to crawl");
            break;
        }
    } else if (strcmp(sub, "metadump") == 0 && ntok == 3) {
        if (!settings.dump_enabled) {
            client_error(c, "ERROR metadump not allowed");
            return;
        }
        if (udp_refused(c)) {
            return;
        }
        if (conn_has_queued_replies(c)) {
            reply(c, "ERROR cannot pipeline other commands before "
                     "metadump");
            return;
        }
        if (!conn_start_dump(c, t[2].value)) {
            reply(c, "BADCLASS invalid class id");
        }
    } else if (strcmp(sub, "tocrawl") == 0 && ntok == 3) {
        if (!safe_strtoul(t[2].value, &v)) {
            client_error(c, "CLIENT_ERROR bad command line format");
            return;
        }
        settings.lru_crawler_tocrawl = v;
        reply(c, "OK");
    } else if (strcmp(sub, "sleep") == 0 && ntok == 3) {
        if (!safe_strtoul(t[2].value, &v)) {
            client_error(c, "CLIENT_ERROR bad command line format");
            return;
        }
        if (v > 1000000) {
            client_error(c, "CLIENT_ERROR sleep must be one second or less");
            return;
        }
        settings.lru_crawler_sleep = v;
        reply(c, "OK");
    } else if (strcmp(sub, "enable") == 0 && ntok == 2) {
        if (crawler_start() == 0) {
            reply(c, "OK");
        } else {
            reply(c, "ERROR failed to start lru crawler thread");
        }
    } else if (strcmp(sub, "disable") == 0 && ntok == 2) {
        crawler_stop();
        reply(c, "OK");
    } else {
        client_error(c, "ERROR");
    }
}

/* lru tune|mode|temp_ttl: the segmented LRU's knobs, as memcached. */
static void process_lru(struct conn *c, struct token *t, int ntok)
{
    const char *sub = t[1].value;
    uint32_t hot, warm;
    double hot_f, warm_f;
    int32_t ttl;

    c->noreply = is_noreply(t, ntok);
    if (strcmp(sub, "tune") == 0 && ntok >= 6) {
        if (!safe_strtoul(t[2].value, &hot) ||
            !safe_strtoul(t[3].value, &warm) ||
            !safe_strtod(t[4].value, &hot_f) ||
            !safe_strtod(t[5].value, &warm_f)) {
            reply(c, "ERROR");
        } else if ((uint64_t)hot + warm > 80) {
            reply(c, "ERROR hot and warm pcts must not exceed 80");
        } else if (hot_f <= 0 || warm_f <= 0) {
            reply(c, "ERROR hot/warm age factors must be greater than 0");
        } else {
            settings.hot_lru_pct = (int)hot;
            settings.warm_lru_pct = (int)warm;
            settings.hot_max_factor = hot_f;
            settings.warm_max_factor = warm_f;
            reply(c, "OK");
        }
    } else if (strcmp(sub, "mode") == 0 && ntok >= 3 &&
               settings.lru_maintainer) {
        if (strcmp(t[2].value, "flat") == 0) {
            settings.lru_segmented = false;
            reply(c, "OK");
        } else if (strcmp(t[2].value, "segmented") == 0) {
            settings.lru_segmented = true;
            reply(c, "OK");
        } else {
            reply(c, "ERROR");
        }
    } else if (strcmp(sub, "temp_ttl") == 0 && ntok >= 3 &&
               settings.lru_maintainer) {
        if (!safe_strtol(t[2].value, &ttl)) {
            reply(c, "ERROR");
        } else {
            if (ttl >= 0) {
                settings.temporary_ttl = ttl;
            }
            settings.temp_lru = ttl >= 0;
            reply(c, "OK");
        }
    } else {
        reply(c, "ERROR");
    }
}

static void process_slabs(struct conn *c, struct token *t, int ntok)
{
    int32_t src, dst, mode;

    if (strcmp(t[1].value, "automove") == 0 && ntok == 3) {
        if (!safe_strtol(t[2].value, &mode)) {
            client_error(c, "CLIENT_ERROR bad command line format");
            return;
        }
        if (mode < 0 || mode > 2) {
            client_error(c, "ERROR");
            return;
        }
        settings.slab_automove = mode;
        reply(c, "OK");
    } else if (strcmp(t[1].value, "reassign") == 0 && ntok == 4) {
        if (!safe_strtol(t[2].value, &src) ||
            !safe_strtol(t[3].value, &dst)) {
            client_error(c, "CLIENT_ERROR bad command line format");
            return;
        }
        if (!settings.slab_reassign) {
            client_error(c, "CLIENT_ERROR slab reassignment disabled");
        } else if (src == dst) {
            reply(c, "SAME src and dst class are identical");
        } else if (src < -1 || src == 0 || src > (int)slabs_count() ||
                   dst < 0 || dst > (int)slabs_count()) {
            reply(c, "BADCLASS invalid src or dst class id");
        } else {
            bool busy;
            enum reassign_result r = items_reassign(src, (unsigned)dst,
                                                    &busy);
            if (busy) {
                reply(c, "BUSY currently processing reassign request");
            } else if (r == REASSIGN_OK) {
                reply(c, "OK");
            } else if (r == REASSIGN_NOSPARE) {
                reply(c, "NOSPARE source class has no spare pages");
            } else if (r == REASSIGN_SAME) {
                reply(c, "SAME src and dst class are identical");
            } else {
                reply(c, "BADCLASS invalid src or dst class id");
            }
        }
    } else {
        client_error(c, "ERROR");
    }
}

/* repl_wait [timeout_ms]: wait until the peer has applied this
 * connection's last write.  OK: applied there; FAILED: the peer could not
 * store it (out of memory there); TIMEOUT: not yet; NOLINK: replication
 * is off or no link is up. */
static void process_repl_wait(struct conn *c, struct token *t, int ntok)
{
    uint32_t ms = (uint32_t)settings.repl_sync_timeout;

    if (ntok == 2 && (!safe_strtoul(t[1].value, &ms) || ms > 600000)) {
        client_error(c, "CLIENT_ERROR bad command line format");
        return;
    }
    if (udp_refused(c)) {
        return;
    }
    if (!repl_enabled() || !repl_linked()) {
        reply(c, "NOLINK");
        return;
    }
    if (!conn_repl_wait(c, ms)) {
        reply(c, repl_write_failed(c->last_write_off) ? "FAILED" : "OK");
    }
}

static void process_watch(struct conn *c, struct token *t, int ntok)
{
    char *args[MAX_TOKENS];
    unsigned flags;
    int i;

    if (!settings.watch_enabled) {
        client_error(c, "CLIENT_ERROR watch commands not allowed");
        return;
    }
    if (udp_refused(c)) {
        return;
    }
    for (i = 1; i < ntok; i++) {
        args[i - 1] = t[i].value;
    }
    if (!watch_parse(args, ntok - 1, &flags)) {
        client_error(c, "ERROR");
        return;
    }
    conn_out_str(c, "OK\r\n");
    conn_set_state(c, CONN_WATCH);
    watch_add(c, flags);
}

#define IS(s) (n == sizeof(s) - 1 && memcmp(cmd, s, sizeof(s) - 1) == 0)

bool proto_text_admin(struct conn *c, struct token *t, int ntok)
{
    const char *cmd = t[0].value;
    size_t n = t[0].length;

    if (IS("stats")) {
        process_stats(c, t, ntok);
    } else if (IS("flush_all") && ntok >= 1 && ntok <= 3) {
        process_flush_all(c, t, ntok);
    } else if (IS("version")) {
        conn_out_str(c, "VERSION " SERVER_VERSION "\r\n");
    } else if (IS("quit")) {
        conn_quit(c);
#ifdef PAIRCACHED_DEBUG_TIME
    } else if (IS("debugtime") && ntok == 2) {
        process_debugtime(c, t[1].value);
#endif
    } else if (IS("verbosity") && (ntok == 2 || ntok == 3)) {
        process_verbosity(c, t, ntok);
    } else if (IS("cache_memlimit") && (ntok == 2 || ntok == 3)) {
        process_memlimit(c, t, ntok);
    } else if (IS("shutdown")) {
        process_shutdown(c, t, ntok);
    } else if (IS("refresh_certs")) {
        process_refresh_certs(c, t, ntok);
    } else if (IS("repl_wait") && (ntok == 1 || ntok == 2)) {
        process_repl_wait(c, t, ntok);
    } else if (IS("watch")) {
        process_watch(c, t, ntok);
    } else if (IS("lru_crawler") && ntok >= 2) {
        process_lru_crawler(c, t, ntok);
    } else if (IS("slabs") && ntok >= 2) {
        process_slabs(c, t, ntok);
    } else if (IS("lru") && ntok >= 2) {
        process_lru(c, t, ntok);
    } else {
        return false;
    }
    return true;
}
#undef IS
