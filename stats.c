/*
 * stats.c - counters and the text of `stats`, `stats settings`, `stats
 * slabs` and `stats detail`.  Field names and order follow memcached 1.6,
 * because exporters and memcached-tool parse them.
 */
#include "memcached.h"
#include "repl_health.h"
#include "stats.h"
#include "tls.h"
#include "assoc.h"
#include "crawler.h"
#include "items.h"
#include "items_lru.h"
#include "lru_maintainer.h"
#include "settings.h"
#include "slabs.h"
#include "slab_mover.h"
#include "thread.h"
#include "watch.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void stats_detail_clear(void);

static struct thread_stats *all;    /* nthreads + 1 (spare) */
static int nthreads;
static struct thread_stats spare;
__thread struct thread_stats *tstats = &spare;
struct global_stats gstats;

int stats_init(int n)
{
    nthreads = n;
    all = calloc((size_t)n + 1, sizeof(*all));
    if (all == NULL) {
        return -1;
    }
    gstats.reserved_fds = 20;
    gstats.accepting_conns = 1;
    return 0;
}

void stats_delta_hit(unsigned clsid, bool incr)
{
    if (incr) {
        SLAB_STAT_INCR(clsid, incr_hits);
    } else {
        SLAB_STAT_INCR(clsid, decr_hits);
    }
}

struct thread_stats *stats_thread(int i)
{
    return &all[i];
}

void stats_sum(struct thread_stats *out)
{
    int i, id;

    memset(out, 0, sizeof(*out));
    for (i = 0; i <= nthreads; i++) {
        const struct thread_stats *t = (i < nthreads) ? &all[i] : &spare;
#define SUM(name, desc) out->name += t->name;
        THREAD_STATS(SUM)
        for (id = 0; id < SLABS_MAX_CLASSES; id++) {
#define SUM_SLAB(name, desc) out->slab[id].name += t->slab[id].name;
            SLAB_STATS(SUM_SLAB)
        }
    }
}

void stats_reset(void)
{
    int i;

    /* Racy against the owning threads by design, as in memcached: a
     * counter bumped during the reset may survive it. */
    for (i = 0; i < nthreads; i++) {
        memset(&all[i], 0, sizeof(all[i]));
    }
    memset(&spare, 0, sizeof(spare));
    __atomic_store_n(&gstats.total_conns, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&gstats.rejected_conns, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&gstats.listen_disabled_num, 0, __ATOMIC_RELAXED);
    items_reset_total();
    items_reset_lru_stats();
    stats_detail_clear();
}

/* Sum one per-class counter over all classes. */
#define SLAB_TOTAL(t, field) \
    ({ uint64_t s_ = 0; int k_; \
       for (k_ = 0; k_ < SLABS_MAX_CLASSES; k_++) s_ += (t)->slab[k_].field; \
       s_; })

#define U64(name, v) sb_stat(sb, name, "%llu", (unsigned long long)(v))

/* stats_general's sections, in memcached's order. */
static void general_process(struct strbuf *sb)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    sb_stat(sb, "pid", "%ld", (long)getpid());
    sb_stat(sb, "uptime", "%u", current_time - process_started);
    sb_stat(sb, "time", "%u", current_time);
    sb_stat(sb, "version", "%s", SERVER_VERSION);
    sb_stat(sb, "libevent", "%s", event_get_version());
    sb_stat(sb, "pointer_size", "%d", (int)(8 * sizeof(void *)));
    sb_stat(sb, "rusage_user", "%ld.%06ld", (long)ru.ru_utime.tv_sec,
            (long)ru.ru_utime.tv_usec);
    sb_stat(sb, "rusage_system", "%ld.%06ld", (long)ru.ru_stime.tv_sec,
            (long)ru.ru_stime.tv_usec);
    sb_stat(sb, "max_connections", "%d", settings.maxconns);
}

static void general_conns(struct strbuf *sb, const struct thread_stats *t)
{
    U64("curr_connections", gstats.curr_conns);
    U64("total_connections", gstats.total_conns);
    if (settings.maxconns_fast) {
        U64("rejected_connections", gstats.rejected_conns);
    }
    U64("connection_structures", gstats.conn_structs);
    /* memcached's response-object and read-buffer pools do not exist
     * here; the names stay, with zeros, for tools that expect them. */
    U64("response_obj_oom", t->response_obj_oom);
    U64("response_obj_count", 0);
    U64("response_obj_bytes", 0);
    U64("read_buf_count", 0);
    U64("read_buf_bytes", 0);
    U64("read_buf_bytes_free", 0);
    U64("read_buf_oom", 0);
    U64("reserved_fds", gstats.reserved_fds);
}

static void general_commands(struct strbuf *sb, const struct thread_stats *t)
{
    U64("cmd_get", t->get_cmds);
    U64("cmd_set", SLAB_TOTAL(t, set_cmds));
    U64("cmd_flush", t->flush_cmds);
    U64("cmd_touch", t->touch_cmds);
    U64("cmd_meta", t->meta_cmds);
    U64("get_hits", SLAB_TOTAL(t, get_hits));
    U64("get_misses", t->get_misses);
    U64("get_expired", t->get_expired);
    U64("get_flushed", t->get_flushed);
    U64("delete_misses", t->delete_misses);
    U64("delete_hits", SLAB_TOTAL(t, delete_hits));
    U64("incr_misses", t->incr_misses);
    U64("incr_hits", SLAB_TOTAL(t, incr_hits));
    U64("decr_misses", t->decr_misses);
    U64("decr_hits", SLAB_TOTAL(t, decr_hits));
    U64("cas_misses", t->cas_misses);
    U64("cas_hits", SLAB_TOTAL(t, cas_hits));
    U64("cas_badval", SLAB_TOTAL(t, cas_badval));
    U64("touch_hits", SLAB_TOTAL(t, touch_hits));
    U64("touch_misses", t->touch_misses);
    U64("store_too_large", t->store_too_large);
    U64("store_no_memory", t->store_no_memory);
    U64("auth_cmds", t->auth_cmds);
    U64("auth_errors", t->auth_errors);
    if (settings.idle_timeout) {
        U64("idle_kicks", gstats.idle_kicks);
    }
}

static void general_server(struct strbuf *sb, const struct thread_stats *t)
{
    U64("bytes_read", t->bytes_read);
    U64("bytes_written", t->bytes_written);
    U64("limit_maxbytes", slabs_mem_limit() ? slabs_mem_limit()
                                             : settings.maxbytes);
    sb_stat(sb, "accepting_conns", "%d", gstats.accepting_conns);
    U64("listen_disabled_num", gstats.listen_disabled_num);
    U64("time_in_listen_disabled_us", 0);
    sb_stat(sb, "threads", "%d", settings.num_threads);
    U64("conn_yields", t->conn_yields);
    sb_stat(sb, "hash_power_level", "%u", assoc_hashpower());
    U64("hash_bytes", ((uint64_t)1 << assoc_hashpower()) * sizeof(void *));
    sb_stat(sb, "hash_is_expanding", "%d", assoc_is_expanding() ? 1 : 0);
}

/* The slab mover, the crawler and the LRU maintainer. */
static void general_background(struct strbuf *sb)
{
    uint64_t rescues, chunk_rescues, evictions_nomem;

    if (settings.slab_reassign) {
        items_reassign_stats(&rescues, &chunk_rescues, &evictions_nomem);
        U64("slab_reassign_rescues", rescues);
        U64("slab_reassign_chunk_rescues", chunk_rescues);
        U64("slab_reassign_evictions_nomem", evictions_nomem);
        U64("slab_reassign_inline_reclaim", 0);
        U64("slab_reassign_busy_items", 0);
        U64("slab_reassign_busy_deletes", 0);
        sb_stat(sb, "slab_reassign_running", "%d",
                items_reassign_running() ? 1 : 0);
        U64("slabs_moved", items_slabs_moved());
    }
    if (settings.lru_crawler) {
        sb_stat(sb, "lru_crawler_running", "%d", crawler_running() ? 1 : 0);
        U64("lru_crawler_starts", crawler_starts());
    }
    if (settings.lru_maintainer) {
        U64("lru_maintainer_juggles", lru_maintainer_juggles());
    }
}

static void general_logs_tls(struct strbuf *sb)
{
    U64("malloc_fails", gstats.malloc_fails);
    U64("log_worker_dropped", 0);
    U64("log_worker_written", 0);
    U64("log_watcher_skipped", watch_skipped());
    U64("log_watcher_sent", watch_sent());
    U64("log_watchers", watch_count());
    if (settings.ssl.enabled) {
        if (settings.ssl.session_cache) {
            U64("ssl_new_sessions", tls_server_new_sessions());
        }
        U64("ssl_handshake_errors", tls_server_handshake_errors());
        sb_stat(sb, "time_since_server_cert_refresh", "%u",
                current_time - tls_server_cert_time());
    }
    /* No NAPI id steering and no per-thread listeners here: always 0. */
    U64("unexpected_napi_ids", 0);
    U64("round_robin_fallback", 0);
}

/* A counter's total in stats (items_lru.h, LRU_STATS): shown as `in`
 * says. */
enum lru_in_stats { LRU_NO, LRU_ALWAYS, LRU_MAINT };

static void lru_total(struct strbuf *sb, const char *name, uint64_t v,
                      enum lru_in_stats in)
{
    if (in == LRU_ALWAYS || (in == LRU_MAINT && settings.lru_maintainer)) {
        U64(name, v);
    }
}

#define LRU_STAT_GENERAL(name, in, ...) \
    lru_total(sb, #name, lru->name, LRU_##in);
#define LRU_STAT_TOTAL(name, field) \
    lru_total(sb, #name, lru->field, LRU_ALWAYS);

static void general_items(struct strbuf *sb, const struct lru_stats *lru)
{
    U64("bytes", lru->bytes);
    U64("curr_items", items_curr());
    U64("total_items", items_total());
    U64("slab_global_page_pool", slabs_pool_pages());
    LRU_STATS(LRU_STAT_GENERAL, LRU_STAT_NONE, LRU_STAT_TOTAL)
    if (settings.lru_maintainer) {
        U64("lru_bumps_dropped", 0);
    }
}

void stats_general(struct strbuf *sb)
{
    struct thread_stats t;
    struct lru_stats lru;

    stats_sum(&t);
    items_lru_totals(&lru);
    general_process(sb);
    general_conns(sb, &t);
    general_commands(sb, &t);
    general_server(sb, &t);
    general_background(sb);
    general_logs_tls(sb);
    general_items(sb, &lru);
    repl_health_stats(sb);
}

/* `stats extras`: counters paircached keeps that memcached's `stats` does
 * not print (memcached's field list stays exact for tools that count it). */
void stats_extras(struct strbuf *sb)
{
    struct thread_stats t;

    stats_sum(&t);
    U64("client_errors", t.client_errors);
    U64("idle_kicks", gstats.idle_kicks);
    if (settings.udpport != 0) {
        U64("udp_datagrams", t.udp_datagrams);
        U64("udp_bad_frames", t.udp_bad_frames);
        U64("udp_replies_dropped", t.udp_replies_dropped);
    }
}

static const char *yesno(bool b)
{
    return b ? "yes" : "no";
}

/* memcached's client-port TLS settings, -Z or not, as it prints them:
 * NULL paths as glibc prints them there. */
static void stats_settings_tls(struct strbuf *sb)
{
    const char *chain = settings.ssl.chain_cert;
    const char *key = settings.ssl.key;

    sb_stat(sb, "ssl_enabled", "%s", yesno(settings.ssl.enabled));
    sb_stat(sb, "ssl_chain_cert", "%s", chain ? chain : "(null)");
    sb_stat(sb, "ssl_key", "%s", key ? key : "(null)");
    sb_stat(sb, "ssl_verify_mode", "%d", settings.ssl.verify_mode);
    sb_stat(sb, "ssl_keyformat", "%d", settings.ssl.keyformat);
    sb_stat(sb, "ssl_ciphers", "%s",
            settings.ssl.ciphers ? settings.ssl.ciphers : "NULL");
    sb_stat(sb, "ssl_ca_cert", "%s",
            settings.ssl.ca_cert ? settings.ssl.ca_cert : "NULL");
    sb_stat(sb, "ssl_wbuf_size", "%u", settings.ssl.wbuf_size);
    sb_stat(sb, "ssl_session_cache", "%s",
            yesno(settings.ssl.session_cache));
    sb_stat(sb, "ssl_kernel_tls", "%s", yesno(settings.ssl.kernel_tls));
    sb_stat(sb, "ssl_min_version", "%s",
            tls_version_name(settings.ssl.min_version));
}

void stats_settings(struct strbuf *sb)
{
    static const char *const protos[] = {
        "auto-negotiate", "ascii", "binary"
    };

    U64("maxbytes", settings.maxbytes);
    sb_stat(sb, "maxconns", "%d", settings.maxconns);
    sb_stat(sb, "tcpport", "%d", settings.port);
    sb_stat(sb, "udpport", "%d", settings.udpport);
    sb_stat(sb, "inter", "%s", settings.inter ? settings.inter : "NULL");
    sb_stat(sb, "verbosity", "%d", settings.verbose);
    sb_stat(sb, "oldest", "0");
    sb_stat(sb, "evictions", "%s", settings.evict_to_free ? "on" : "off");
    sb_stat(sb, "domain_socket", "%s",
            settings.socketpath ? settings.socketpath : "NULL");
    sb_stat(sb, "umask", "%o", settings.access);
    sb_stat(sb, "shutdown_command", "%s", yesno(settings.shutdown_command));
    sb_stat(sb, "growth_factor", "%.2f", settings.factor);
    sb_stat(sb, "chunk_size", "%d", settings.chunk_size);
    sb_stat(sb, "num_threads", "%d", settings.num_threads);
    sb_stat(sb, "num_threads_per_udp", "%d", settings.num_threads);
    sb_stat(sb, "stat_key_prefix", "%c", settings.prefix_delimiter);
    sb_stat(sb, "detail_enabled", "%s", yesno(settings.detail_enabled));
    sb_stat(sb, "reqs_per_event", "%d", settings.reqs_per_event);
    sb_stat(sb, "cas_enabled", "%s", yesno(settings.use_cas));
    sb_stat(sb, "tcp_backlog", "%d", settings.backlog);
    sb_stat(sb, "binding_protocol", "%s",
            protos[settings.binding_protocol]);
    sb_stat(sb, "auth_enabled_sasl", "%s", yesno(settings.sasl));
    /* memcached prints the file name here when -Y is on. */
    sb_stat(sb, "auth_enabled_ascii", "%s",
            settings.auth_file ? settings.auth_file : "no");
    sb_stat(sb, "item_size_max", "%d", settings.item_size_max);
    sb_stat(sb, "maxconns_fast", "%s", yesno(settings.maxconns_fast));
    sb_stat(sb, "hashpower_init", "%d", settings.hashpower_init);
    sb_stat(sb, "slab_reassign", "%s", yesno(settings.slab_reassign));
    sb_stat(sb, "slab_automove", "%d", settings.slab_automove);
    sb_stat(sb, "slab_automove_ratio", "%.2f", settings.slab_automove_ratio);
    sb_stat(sb, "slab_automove_window", "%d", settings.slab_automove_window);
    sb_stat(sb, "slab_chunk_max", "%d", settings.slab_chunk_size_max);
    sb_stat(sb, "slab_hugepages", "%s", yesno(settings.slab_hugepages));
    sb_stat(sb, "lru_crawler", "%s", yesno(settings.lru_crawler));
    sb_stat(sb, "lru_crawler_sleep", "%u", settings.lru_crawler_sleep);
    sb_stat(sb, "lru_crawler_tocrawl", "%u", settings.lru_crawler_tocrawl);
    sb_stat(sb, "tail_repair_time", "%d", settings.tail_repair_time);
    sb_stat(sb, "flush_enabled", "%s", yesno(settings.flush_enabled));
    sb_stat(sb, "dump_enabled", "%s", yesno(settings.dump_enabled));
    sb_stat(sb, "hash_algorithm", "%s", settings.hash_algorithm_name);
    sb_stat(sb, "lru_maintainer_thread", "%s",
            yesno(settings.lru_maintainer));
    sb_stat(sb, "lru_segmented", "%s", yesno(settings.lru_segmented));
    sb_stat(sb, "hot_lru_pct", "%d", settings.hot_lru_pct);
    sb_stat(sb, "warm_lru_pct", "%d", settings.warm_lru_pct);
    sb_stat(sb, "hot_max_factor", "%.2f", settings.hot_max_factor);
    sb_stat(sb, "warm_max_factor", "%.2f", settings.warm_max_factor);
    sb_stat(sb, "temp_lru", "%s", yesno(settings.temp_lru));
    sb_stat(sb, "temporary_ttl", "%d", settings.temporary_ttl);
    sb_stat(sb, "idle_timeout", "%d", settings.idle_timeout);
    sb_stat(sb, "watcher_logbuf_size", "%d", settings.watcher_logbuf_size);
    sb_stat(sb, "worker_logbuf_size", "%d", settings.worker_logbuf_size);
    sb_stat(sb, "read_buf_mem_limit", "%u", settings.read_buf_mem_limit);
    sb_stat(sb, "track_sizes", "no");
    sb_stat(sb, "inline_ascii_response", "no");
    sb_stat(sb, "slab_automove_freeratio", "%.3f",
            settings.slab_automove_freeratio);
    stats_settings_tls(sb);
    sb_stat(sb, "num_napi_ids", "%d", settings.num_napi_ids);
    sb_stat(sb, "memory_file", "%s",
            settings.memory_file ? settings.memory_file : "(null)");
}

static void slab_class_extra(struct strbuf *sb, unsigned id)
{
    struct thread_stats t;
    char name[64];

    stats_sum(&t);
#define SLAB_LINE(field, desc) \
    snprintf(name, sizeof(name), "%u:%s", id, #field); \
    U64(name, t.slab[id].field);
    snprintf(name, sizeof(name), "%u:get_hits", id);
    U64(name, t.slab[id].get_hits);
    snprintf(name, sizeof(name), "%u:cmd_set", id);
    U64(name, t.slab[id].set_cmds);
    SLAB_LINE(delete_hits, "")
    SLAB_LINE(incr_hits, "")
    SLAB_LINE(decr_hits, "")
    SLAB_LINE(cas_hits, "")
    SLAB_LINE(cas_badval, "")
    SLAB_LINE(touch_hits, "")
#undef SLAB_LINE
}

void stats_slabs(struct strbuf *sb)
{
    slabs_stats(sb, slab_class_extra);
}

/* --- stats detail ----------------------------------------------------------
 * Counters per key prefix (the part before the first -D character), in a small
 * chained table under one mutex: only used while an operator has turned
 * detail on, as in memcached.
 */
#define PREFIX_BUCKETS 256
#define PREFIX_MAX 200
/* Any client may turn detail on and invent prefixes: past this many,
 * new prefixes are not tracked, so memory and chain walks stay bounded. */
#define PREFIX_LIMIT 10000

struct prefix_stats {
    char *prefix;               /* the prefix, NUL terminated */
    size_t len;                 /* its length */
    uint64_t gets;              /* get requests */
    uint64_t hits;              /* get hits */
    uint64_t sets;              /* stores */
    uint64_t deletes;           /* deletes */
    struct prefix_stats *next;  /* bucket chain */
    struct prefix_stats *order; /* next in first-seen order */
};

static struct prefix_stats *prefixes[PREFIX_BUCKETS];
static struct prefix_stats *first_seen;     /* dump order: oldest first */
static struct prefix_stats **last_seen = &first_seen;
static unsigned prefix_count;   /* entries in the table */
static pthread_mutex_t prefix_lock = PTHREAD_MUTEX_INITIALIZER;

/* Find or add the entry for key's prefix; NULL if it has none.  Caller
 * holds prefix_lock. */
static struct prefix_stats *prefix_find(const char *key, size_t nkey)
{
    const char *colon = memchr(key, settings.prefix_delimiter, nkey);
    struct prefix_stats *p;
    unsigned h = 0;
    size_t len, i;

    if (colon == NULL) {
        return NULL;
    }
    len = (size_t)(colon - key);
    if (len > PREFIX_MAX) {
        return NULL;
    }
    for (i = 0; i < len; i++) {
        h = h * 31 + (unsigned char)key[i];
    }
    h %= PREFIX_BUCKETS;
    for (p = prefixes[h]; p != NULL; p = p->next) {
        if (p->len == len && memcmp(p->prefix, key, len) == 0) {
            return p;
        }
    }
    if (prefix_count >= PREFIX_LIMIT) {
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->prefix = malloc(len + 1)) == NULL) {
        free(p);
        return NULL;
    }
    memcpy(p->prefix, key, len);
    p->prefix[len] = '\0';
    p->len = len;
    p->next = prefixes[h];
    prefixes[h] = p;
    prefix_count++;
    *last_seen = p;
    last_seen = &p->order;
    return p;
}

#define DETAIL_COUNT(stmt) \
    do { \
        struct prefix_stats *p; \
        if (!settings.detail_enabled) { \
            return; \
        } \
        pthread_mutex_lock(&prefix_lock); \
        p = prefix_find(key, nkey); \
        if (p != NULL) { \
            stmt; \
        } \
        pthread_mutex_unlock(&prefix_lock); \
    } while (0)

void stats_detail_get(const char *key, size_t nkey, bool hit)
{
    DETAIL_COUNT(p->gets++; p->hits += hit ? 1 : 0);
}

void stats_detail_set(const char *key, size_t nkey)
{
    DETAIL_COUNT(p->sets++);
}

void stats_detail_delete(const char *key, size_t nkey)
{
    DETAIL_COUNT(p->deletes++);
}

void stats_detail_dump(struct strbuf *sb)
{
    struct prefix_stats *p;

    pthread_mutex_lock(&prefix_lock);
    for (p = first_seen; p != NULL; p = p->order) {
        sb_printf(sb, "PREFIX %s get %llu hit %llu set %llu del %llu\r\n",
                  p->prefix, (unsigned long long)p->gets,
                  (unsigned long long)p->hits, (unsigned long long)p->sets,
                  (unsigned long long)p->deletes);
    }
    pthread_mutex_unlock(&prefix_lock);
}

static void stats_detail_clear(void)
{
    struct prefix_stats *p, *next;

    pthread_mutex_lock(&prefix_lock);
    for (p = first_seen; p != NULL; p = next) {
        next = p->order;
        free(p->prefix);
        free(p);
    }
    memset(prefixes, 0, sizeof(prefixes));
    first_seen = NULL;
    last_seen = &first_seen;
    prefix_count = 0;
    pthread_mutex_unlock(&prefix_lock);
}
