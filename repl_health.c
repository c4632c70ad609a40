/*
 * repl_health.c - the pair's health in plain `stats`, as repl_* lines,
 * for the tools that read only `stats` (memcached-tool, exporters,
 * Telegraf, munin).  The values are picked from `stats replication`, the
 * one place the link code prints them, and renamed; only one-word values,
 * since exporters keep only a line's first word.  Alert rules built on
 * them: doc/operations.txt.
 */
#include "memcached.h"
#include "repl_health.h"
#include "replication.h"

#include <stdio.h>
#include <string.h>

/* `stats replication` name -> the name in `stats` (repl_ + it). */
#define REPL_HEALTH_STATS(X) \
    X(link_state, state) \
    X(link_state_secs, state_secs) \
    X(peer, peer) \
    X(initial_sync_done, initial_sync_done) \
    X(peer_synced, peer_synced) \
    X(lag_ms, lag_ms) \
    X(lag_items, lag_items) \
    X(sync_in_progress, sync_in_progress) \
    X(full_syncs, full_syncs) \
    X(partial_syncs, partial_syncs) \
    X(links, links) \
    X(reconnects, reconnects) \
    X(buffer_overflows, buffer_overflows) \
    X(auth_failures, auth_failures) \
    X(tls_failures, tls_failures) \
    X(protocol_errors, protocol_errors) \
    X(peer_mismatches, peer_mismatches) \
    X(handshake_timeouts, handshake_timeouts) \
    X(sync_timeouts, sync_timeouts)

/* 0 none yet, 1 full, 2 partial: written by the replication thread,
 * read by workers. */
static int last_sync_kind;

void repl_note_sync(bool full)
{
    __atomic_store_n(&last_sync_kind, full ? 1 : 2, __ATOMIC_RELAXED);
}

/* The value of `name` in the STAT lines of `text`, into out. */
static bool find_stat(const char *text, const char *name, char *out,
                      size_t n)
{
    size_t len = strlen(name);
    const char *p = text;

    while ((p = strstr(p, "STAT ")) != NULL) {
        p += 5;
        if (strncmp(p, name, len) == 0 && p[len] == ' ') {
            size_t v = strcspn(p + len + 1, " \r\n");
            snprintf(out, n, "%.*s", (int)v, p + len + 1);
            return v > 0;
        }
    }
    return false;
}

void repl_health_stats(struct strbuf *sb)
{
    static const char *const kinds[] = { "none", "full", "partial" };
    struct strbuf all;
    char v[128];

    if (!repl_enabled()) {
        return;
    }
    sb_init(&all);
    repl_stats(&all);
    if (!all.oom && all.buf != NULL) {
#define PICK(from, to) \
        if (find_stat(all.buf, #from, v, sizeof(v))) { \
            sb_stat(sb, "repl_" #to, "%s", v); \
        }
        REPL_HEALTH_STATS(PICK)
#undef PICK
    }
    sb_free(&all);
    sb_stat(sb, "repl_last_sync_kind", "%s",
            kinds[__atomic_load_n(&last_sync_kind, __ATOMIC_RELAXED)]);
}
