/*
 * stats.h - counters.  Each worker thread owns a struct thread_stats and is
 * its only writer; readers sum all copies without locks (a sum may be a
 * few increments stale, never torn: fields are 64-bit and aligned).
 */
#ifndef STATS_H
#define STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slabs.h"
#include "util.h"

/* Per-thread counters: name, description. */
#define THREAD_STATS(X) \
    X(get_cmds, "retrieval keys requested (get, gets, gat, gats, mg)") \
    X(get_misses, "keys requested and not found") \
    X(get_expired, "keys found expired") \
    X(get_flushed, "keys found invalidated by flush_all") \
    X(touch_cmds, "touch and gat keys") \
    X(touch_misses, "touch and gat keys not found") \
    X(delete_misses, "deletes of missing keys") \
    X(incr_misses, "incr of missing keys") \
    X(decr_misses, "decr of missing keys") \
    X(cas_misses, "cas of missing keys") \
    X(flush_cmds, "flush_all commands") \
    X(meta_cmds, "meta commands") \
    X(bytes_read, "bytes read from clients") \
    X(bytes_written, "bytes written to clients") \
    X(conn_yields, "times a connection yielded after -R requests") \
    X(auth_cmds, "authentication attempts") \
    X(auth_errors, "failed authentication attempts") \
    X(store_too_large, "stores refused: larger than -I") \
    X(store_no_memory, "stores refused: out of memory") \
    X(client_errors, "requests answered with CLIENT_ERROR or ERROR") \
    X(response_obj_oom, "responses refused: read_buf_mem_limit reached") \
    X(udp_datagrams, "request datagrams received on the UDP port") \
    X(udp_bad_frames, "UDP datagrams dropped: bad or cut-short frame") \
    X(udp_replies_dropped, "UDP replies too large, or refused by kernel")

/* Per-thread, per-slab-class counters. */
#define SLAB_STATS(X) \
    X(set_cmds, "storage commands") \
    X(get_hits, "retrieval hits") \
    X(touch_hits, "touch and gat hits") \
    X(delete_hits, "delete hits") \
    X(cas_hits, "successful cas") \
    X(cas_badval, "cas with a stale token") \
    X(incr_hits, "incr hits") \
    X(decr_hits, "decr hits")

#define STATS_FIELD(name, desc) uint64_t name;

struct slab_stats {
    SLAB_STATS(STATS_FIELD)
};

struct thread_stats {
    THREAD_STATS(STATS_FIELD)
    struct slab_stats slab[SLABS_MAX_CLASSES];  /* by class id */
};

/* The calling thread's counters (a shared spare for non-worker threads). */
extern __thread struct thread_stats *tstats;

#define STAT_INCR(field) (tstats->field++)
#define STAT_ADD(field, n) (tstats->field += (n))
#define SLAB_STAT_INCR(id, field) (tstats->slab[(id)].field++)

/* Process-wide counters that are not per thread. */
struct global_stats {
    uint64_t curr_conns;        /* open client connections */
    uint64_t conns_pending;     /* accepted, not yet taken in by a worker */
    uint64_t total_conns;       /* connections accepted since start */
    uint64_t rejected_conns;    /* refused for -c */
    uint64_t conn_structs;      /* connection structures allocated */
    uint64_t listen_disabled_num; /* times accept was paused for -c */
    uint64_t malloc_fails;      /* failed mallocs outside slabs */
    uint64_t reserved_fds;      /* fds kept back from -c */
    uint64_t idle_kicks;        /* connections closed by idle_timeout */
    int accepting_conns;        /* 0 while accept is paused */
};
extern struct global_stats gstats;

int stats_init(int nthreads);
/* The struct for worker i; i == nthreads is the spare. */
struct thread_stats *stats_thread(int i);
void stats_sum(struct thread_stats *out);
void stats_reset(void);
/* An incr (or decr) that found its item in class clsid: the per-class
 * incr_hits/decr_hits (items.c's item_events.delta_hit). */
void stats_delta_hit(unsigned clsid, bool incr);

/* Text of each stats group; each ends without the final "END\r\n". */
void stats_general(struct strbuf *sb);
void stats_extras(struct strbuf *sb);
void stats_settings(struct strbuf *sb);
void stats_slabs(struct strbuf *sb);


/* Per-prefix counters for "stats detail" (only while detail is on). */
void stats_detail_get(const char *key, size_t nkey, bool hit);
void stats_detail_set(const char *key, size_t nkey);
void stats_detail_delete(const char *key, size_t nkey);
void stats_detail_dump(struct strbuf *sb);

#endif
