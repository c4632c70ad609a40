/*
 * items.h - the storage API.  Every mutation from every protocol (and,
 * later, from the replication stream) goes through the functions here;
 * protocol code never touches the hash table or the LRU.
 *
 * Reference rules: functions returning a struct item * give the caller a
 * reference, which it must drop with item_remove() when done (typically
 * after the value has been written to the socket).
 */
#ifndef ITEMS_H
#define ITEMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memcached.h"
#include "util.h"

enum store_mode {
    STORE_MODE_SET,
    STORE_MODE_ADD,
    STORE_MODE_REPLACE,
    STORE_MODE_APPEND,
    STORE_MODE_PREPEND,
    STORE_MODE_CAS
};

enum store_result {
    STORE_STORED,
    STORE_NOT_STORED,           /* add on existing, replace on missing */
    STORE_EXISTS,               /* cas mismatch */
    STORE_NOT_FOUND,            /* cas on missing */
    STORE_NO_MEMORY             /* append/prepend could not allocate */
};

enum get_result {
    GET_HIT,
    GET_MISS,                   /* no such key */
    GET_EXPIRED,                /* found, past its deadline: reclaimed */
    GET_FLUSHED                 /* found, invalidated by flush_all */
};

enum delta_result {
    DELTA_OK,
    DELTA_NON_NUMERIC,
    DELTA_NO_MEMORY,
    DELTA_NOT_FOUND,
    DELTA_EXISTS,               /* cas mismatch */
    DELTA_SUPERSEDED            /* late, and the key was written since it
                                   arrived, or waited through a stall
                                   (items.c): not applied */
};

enum alloc_result {
    ALLOC_OK,
    ALLOC_TOO_LARGE,            /* bigger than the largest slab class */
    ALLOC_NO_MEMORY             /* full, and eviction off or impossible */
};

/* What a mutation hook is told. */
enum mutation_op {
    MUT_STORE,                  /* it is the newly linked item */
    MUT_TOUCH,                  /* it had its deadline changed */
    MUT_DELETE,                 /* key removed; it is the removed item */
    MUT_FLUSH,                  /* everything below version is gone */
    MUT_META                    /* it got a meta mark (ITEM_STALE,
                                   ITEM_TOKEN_SENT); version unchanged */
};

/*
 * Called after each applied mutation, with the item's stripe lock held
 * (so calls for one key arrive in the order they were applied).  For
 * MUT_FLUSH, it is NULL, version is the cutoff and exptime the unix time
 * at which it takes effect.  Must not call back into items.c.
 */
typedef void (*item_mutation_fn)(enum mutation_op op, const struct item *it,
                                 uint64_t version, uint32_t exptime);

int items_init(void);
/* With replication, deletes leave a tombstone for ttl seconds (0: off). */
void items_set_tombstone_ttl(uint32_t ttl);
/* Tombstones currently linked. */
uint64_t items_tombstones(void);
void items_set_mutation_hook(item_mutation_fn fn);
/* What storage tells the counters and watchers, set once at start-up
 * (memcached.c) so that items.c needs neither stats.c nor watch.c: an
 * incr/decr hit in class clsid (stripe lock held), and a live item
 * evicted from an LRU tail (its class's LRU lock held).  NULL: not told. */
struct item_events {
    void (*delta_hit)(unsigned clsid, bool incr);
    void (*evicted)(const struct item *it);
};
void items_set_events(const struct item_events *ev);
/* This node's id in the low bits of every version (0..255). */
void items_set_node_id(unsigned id);

/* A fresh version: above every version issued or seen. */
uint64_t item_next_version(void);
/* Fold a version seen elsewhere into the clock. */
void item_observe_version(uint64_t v);

/* Where the request being executed came from, for late writes (see
 * doc/replication.txt, "Writes that waited"): a connection keeps one and
 * the worker points the storage path at it while it runs that
 * connection's requests. */
struct write_origin {
    uint64_t rx_ms;             /* kernel receive time of the bytes being
                                   parsed, unix ms; 0 = not known */
    uint64_t next_late;         /* lowest version the connection's next
                                   late write may take (keeps its late
                                   writes in their order) */
    bool stalled;               /* the bytes waited for a stall's hold
                                   (repl_wake.h) */
};
/* This thread's writes come from o from now on (NULL: none, the
 * replication thread, a crawler); returns the previous one. */
struct write_origin *item_set_origin(struct write_origin *o);
/* Note the clock's current version (returns the wall clock, unix ms); the replication timer calls it
 * every 100 ms so a late write can find what the clock stood at when
 * its bytes arrived. */
uint64_t item_clock_sample(void);
/* Writes versioned by their receive time, and those of them a newer
 * write had already replaced (answered as done, not applied). */
uint64_t items_late_writes(void);
uint64_t items_late_superseded(void);
/* Locks (add, incr, decr) not run because they waited for a stall's
 * hold too long (items.c, stalled_lock). */
uint64_t items_stalled_locks(void);

/* True when an item of this key and value size could ever be stored. */
bool item_size_ok(size_t nkey, size_t nbytes);
/* A new unlinked item (refcount 1); nbytes includes "\r\n". exptime is an
 * absolute deadline.  On failure returns NULL and sets *why. */
struct item *item_alloc(const char *key, size_t nkey, uint32_t flags,
                        uint32_t exptime, size_t nbytes,
                        enum alloc_result *why);
/* Drop a reference; the last one frees the chunk. */
void item_remove(struct item *it);

/* Look up a live item; *why says why not.  bump: refresh LRU position. */
struct item *item_get(const char *key, size_t nkey, enum get_result *why);
/* Look up and set a new deadline (touch, gat). */
struct item *item_touch(const char *key, size_t nkey, uint32_t exptime,
                        enum get_result *why);

/* Meta get (mg): what to do besides looking up. */
struct meta_get_opts {
    bool touch;                 /* T: set a new deadline */
    uint32_t exptime;           /* ... this one */
    bool vivify;                /* N: create an empty item on a miss */
    uint32_t viv_exptime;       /* ... with this deadline */
    bool recache;               /* R: win when the deadline is earlier */
    uint32_t recache_before;    /* ... than this */
    bool recache_after_touch;   /* R came after T in the request */
    bool no_bump;               /* u: leave LRU and fetched state alone */
};

/* What mg learned about the item (all before this fetch changed it). */
struct meta_get_info {
    bool fetched_before;        /* h */
    uint32_t last_access;       /* l: seconds since the previous access */
    uint32_t exptime_before;    /* deadline before T applied */
    bool won;                   /* W: this client should recache */
    bool stale;                 /* X */
    bool token_sent;            /* Z: someone else already won */
};

struct item *item_get_meta(const char *key, size_t nkey,
                           const struct meta_get_opts *o,
                           struct meta_get_info *r, enum get_result *why);

/* Like item_store; with invalidate, a CAS token older than the item's
 * still stores, but the new value is marked stale and keeps the old
 * deadline (meta ms I). */
enum store_result item_store_meta(struct item *it, enum store_mode mode,
                                  uint64_t *cas, bool invalidate);

/* Meta delete: with invalidate, mark stale (new CAS, optional new
 * deadline) instead of removing.  Returns true if done; *exists tells a
 * CAS mismatch from a miss; *clsid is the deleted item's slab class
 * (for per-class delete_hits). */
bool item_delete_meta(const char *key, size_t nkey, uint64_t cas,
                      bool invalidate, bool set_ttl, uint32_t exptime,
                      bool *exists, unsigned *clsid);

/* A reference to the live item without counting a fetch (me, ma t). */
struct item *item_peek(const char *key, size_t nkey);

/* Store `it` (from item_alloc) with the given mode.  For STORE_MODE_CAS,
 * *cas is the client's token.  On STORED, *cas is set to the new item's
 * CAS.  The caller keeps its reference to `it`. */
enum store_result item_store(struct item *it, enum store_mode mode,
                             uint64_t *cas);

/* Delete; cas != 0 makes it conditional.  Returns true if deleted; on
 * false, *exists tells a cas mismatch from a miss. */
bool item_delete(const char *key, size_t nkey, uint64_t cas, bool *exists);

/* item_delete that also gives the deleted item's slab class in *clsid,
 * for `stats slabs` delete_hits (memcached counts them per class). */
bool item_delete_cls(const char *key, size_t nkey, uint64_t cas,
                     bool *exists, unsigned *clsid);

/* incr/decr.  On DELTA_OK the new value is in *value and its decimal text
 * in buf (at least MAX_NUMBER_LEN + 1 bytes); *cas in: token (0 = any),
 * out: new CAS.  DELTA_SUPERSEDED: a late one (see items.c) over a key
 * written after its bytes arrived; nothing changed. */
enum delta_result item_delta(const char *key, size_t nkey, bool incr,
                             uint64_t delta, uint64_t *value, char *buf,
                             uint64_t *cas);

/* Create a missing counter holding `initial` (binary INCREMENT and meta
 * ma with N).  DELTA_NOT_FOUND: someone else created it first. */
enum delta_result item_create_counter(const char *key, size_t nkey,
                                      uint64_t initial, uint32_t exptime,
                                      uint64_t *cas);

/* flush_all: invalidate every item stored before `when` (unix time; 0 or
 * a time not in the future means now). */
void item_flush(uint32_t when);

/* Reclaim it if it is expired or flushed; the caller holds its stripe
 * lock.  Returns true if it was unlinked (crawler). */
bool item_reclaim_if_dead(struct item *it, uint32_t hv);
bool item_is_dead(const struct item *it);

/* The CAS a client sees: the version, or 0 with -C. */
uint64_t item_cas(const struct item *it);

/* Items linked (not counting tombstones); items linked since start or
 * stats reset. */
uint64_t items_curr(void);
uint64_t items_total(void);
void items_reset_total(void);

/* The peer's flush_all (the other item_apply_* are in items_apply.h). */
void item_apply_flush(uint64_t cutoff, uint32_t at);
/* The current flush_all cutoff (0: none) and when it applies. */
void items_flush_state(uint64_t *cutoff, uint32_t *at);

/* Slabs reassign (slab_mover.c): take linked item `it`, its stripe hv
 * held, out of the page being emptied.  A dead one is unlinked; a live
 * one is copied into a free chunk of its class outside the page, the
 * copy linked in its place, or evicted when the class has none. */
enum page_out {
    PAGE_OUT_NONE,              /* not linked, or not its key's item */
    PAGE_OUT_DEAD,              /* dead: unlinked */
    PAGE_OUT_RESCUED,           /* copied elsewhere */
    PAGE_OUT_CHUNK_RESCUED,     /* a chunk of a chunked item copied */
    PAGE_OUT_EVICTED,           /* live, no free chunk: unlinked */
    PAGE_OUT_BUSY               /* a chunked item in use: try again */
};
enum page_out item_move_out_locked(struct item *it, uint32_t hv);
/* The same for chunk ch of chunked item head (hv: head's stripe, held):
 * the chunk is copied into a free chunk of its class and the copy takes
 * its place in the chain, once no request holds the item. */
struct item_chunk;
enum page_out item_move_chunk_locked(struct item_chunk *ch,
                                     struct item *head, uint32_t hv);

#endif
