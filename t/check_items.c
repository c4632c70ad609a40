/*
 * check_items.c - unit tests of the storage path (items.c, items_*.c): store
 * modes, versions/CAS, expiry, flush, delete, incr/decr, eviction under a
 * tiny memory limit, reference counts and the mutation hook.  The slab
 * allocator and the hash table are real (tiny instances), not mocks.
 */
#include "memcached.h"
#include "assoc.h"
#include "hash.h"
#include "item_chunk.h"
#include "items.h"
#include "items_digest.h"
#include "items_apply.h"
#include "items_lru.h"
#include "settings.h"
#include "slabs.h"
#include "stats.h"
#include "item_locks.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASHPOWER 12

/* --- fixtures ------------------------------------------------------------ */

static void start(size_t limit, size_t chunk_max, size_t item_max)
{
    settings_init();
    util_clock_init();
    ck_assert_int_eq(stats_init(1), 0);
    ck_assert_int_eq(slabs_init(limit, 1.25, 48, chunk_max, item_max, false),
                     0);
    item_chunks_init(item_max);
    ck_assert_int_eq(item_locks_init(HASHPOWER < 13 ? HASHPOWER : 13), 0);
    ck_assert_int_eq(assoc_init(HASHPOWER), 0);
    ck_assert_int_eq(items_init(), 0);
    items_set_mutation_hook(NULL);
}

static void setup(void)
{
    start(64 * 1024 * 1024, 512 * 1024, 1024 * 1024);
}

/* Pages of 2 KB and a 1-byte budget: each class gets its first page only,
 * so class 1 (96-byte chunks) holds 21 items. */
static void setup_tiny(void)
{
    start(1, 1024, 2048);
}

static void teardown(void)
{
    items_set_mutation_hook(NULL);
    assoc_destroy();
    slabs_destroy();
}

/* --- helpers ------------------------------------------------------------- */

static struct item *mk(const char *key, const char *val, uint32_t flags,
                       uint32_t exptime)
{
    size_t vlen = strlen(val);
    enum alloc_result why;
    struct item *it = item_alloc(key, strlen(key), flags, exptime, vlen + 2,
                                 &why);

    ck_assert_msg(it != NULL, "item_alloc(%s) failed: %d", key, (int)why);
    ck_assert_int_eq(why, ALLOC_OK);
    item_value_write(it, 0, val, vlen);
    item_value_write(it, vlen, "\r\n", 2);
    return it;
}

/* Store and drop our reference.  cas may be NULL (token 0). */
static enum store_result put(const char *key, const char *val,
                             uint32_t flags, uint32_t exptime,
                             enum store_mode mode, uint64_t *cas)
{
    uint64_t token = 0;
    struct item *it = mk(key, val, flags, exptime);
    enum store_result r = item_store(it, mode, cas != NULL ? cas : &token);

    item_remove(it);
    return r;
}

static void set(const char *key, const char *val)
{
    ck_assert_int_eq(put(key, val, 0, 0, STORE_MODE_SET, NULL), STORE_STORED);
}

static bool value_is(const struct item *it, const char *val)
{
    size_t vlen = strlen(val);
    char *buf;
    bool same;

    if (it->nbytes != vlen + 2) {
        return false;
    }
    buf = malloc(vlen + 2);
    ck_assert_ptr_nonnull(buf);
    item_value_read(it, 0, buf, vlen + 2);
    same = memcmp(buf, val, vlen) == 0 && memcmp(buf + vlen, "\r\n", 2) == 0;
    free(buf);
    return same;
}

/* The key's value is val (NULL: the key is missing). */
static void assert_value(const char *key, const char *val)
{
    enum get_result why;
    struct item *it = item_get(key, strlen(key), &why);

    if (val == NULL) {
        ck_assert_msg(it == NULL, "%s: expected missing", key);
        return;
    }
    ck_assert_msg(it != NULL, "%s: expected \"%s\", missing (%d)", key, val,
                  (int)why);
    ck_assert_int_eq(why, GET_HIT);
    ck_assert_msg(value_is(it, val), "%s: expected %zu bytes \"%.20s\", "
                  "got %u bytes", key, strlen(val), val,
                  (unsigned)it->nbytes - 2);
    item_remove(it);
}

static uint64_t cas_of(const char *key)
{
    enum get_result why;
    struct item *it = item_get(key, strlen(key), &why);
    uint64_t cas;

    ck_assert_ptr_nonnull(it);
    cas = item_cas(it);
    item_remove(it);
    return cas;
}

/* Chunks in use over all classes: with no references held, exactly the
 * linked items. */
static uint64_t chunks_used(void)
{
    uint64_t total = 0;
    unsigned id;

    for (id = 1; id <= slabs_largest_class(); id++) {
        uint64_t used, nfree, req;
        slabs_class_stats(id, &used, &nfree, &req);
        total += used;
    }
    return total;
}

static void assert_no_leak(void)
{
    ck_assert_uint_eq(chunks_used(), items_curr());
}

/* --- store modes --------------------------------------------------------- */

enum { CAS_NONE, CAS_RIGHT, CAS_WRONG };

struct store_case {
    const char *old;            /* stored first (flags 1, exptime +1000) */
    enum store_mode mode;       /* then this, with "new" (flags 2, no exp) */
    int cas;                    /* token given */
    enum store_result want;
    const char *final;          /* value afterwards, NULL = missing */
    bool new_meta;              /* flags/exptime now the new item's */
};

static const struct store_case store_cases[] = {
    {NULL, STORE_MODE_SET, CAS_NONE, STORE_STORED, "new", true},
    {"old", STORE_MODE_SET, CAS_NONE, STORE_STORED, "new", true},
    {NULL, STORE_MODE_ADD, CAS_NONE, STORE_STORED, "new", true},
    {"old", STORE_MODE_ADD, CAS_NONE, STORE_NOT_STORED, "old", false},
    {NULL, STORE_MODE_REPLACE, CAS_NONE, STORE_NOT_STORED, NULL, false},
    {"old", STORE_MODE_REPLACE, CAS_NONE, STORE_STORED, "new", true},
    {NULL, STORE_MODE_APPEND, CAS_NONE, STORE_NOT_STORED, NULL, false},
    {"old", STORE_MODE_APPEND, CAS_NONE, STORE_STORED, "oldnew", false},
    {"old", STORE_MODE_APPEND, CAS_RIGHT, STORE_STORED, "oldnew", false},
    {"old", STORE_MODE_APPEND, CAS_WRONG, STORE_EXISTS, "old", false},
    {NULL, STORE_MODE_PREPEND, CAS_NONE, STORE_NOT_STORED, NULL, false},
    {"old", STORE_MODE_PREPEND, CAS_NONE, STORE_STORED, "newold", false},
    {"old", STORE_MODE_PREPEND, CAS_WRONG, STORE_EXISTS, "old", false},
    {NULL, STORE_MODE_CAS, CAS_WRONG, STORE_NOT_FOUND, NULL, false},
    {"old", STORE_MODE_CAS, CAS_RIGHT, STORE_STORED, "new", true},
    {"old", STORE_MODE_CAS, CAS_WRONG, STORE_EXISTS, "old", false},
};

START_TEST(test_store_modes)
{
    const struct store_case *c = &store_cases[_i];
    uint32_t old_exp = current_time + 1000;
    uint64_t old_cas = 0;
    uint64_t cas = 0;
    enum get_result why;
    struct item *it;

    if (c->old != NULL) {
        ck_assert_int_eq(put("k", c->old, 1, old_exp, STORE_MODE_SET,
                             &old_cas), STORE_STORED);
        ck_assert_uint_ne(old_cas, 0);
        ck_assert_uint_eq(cas_of("k"), old_cas);
    }
    if (c->cas == CAS_RIGHT) {
        cas = old_cas;
    } else if (c->cas == CAS_WRONG) {
        cas = old_cas + 12345;
    }
    ck_assert_int_eq(put("k", "new", 2, 0, c->mode, &cas), c->want);
    it = item_get("k", 1, &why);
    if (c->final == NULL) {
        ck_assert_ptr_null(it);
        ck_assert_int_eq(why, GET_MISS);
        ck_assert_uint_eq(items_curr(), 0);
    } else {
        ck_assert_ptr_nonnull(it);
        ck_assert_msg(value_is(it, c->final), "got \"%.*s\"",
                      (int)it->nbytes - 2, ITEM_data(it));
        ck_assert_uint_eq(it->flags, c->new_meta ? 2 : 1);
        ck_assert_uint_eq(it->exptime, c->new_meta ? 0 : old_exp);
        if (c->want == STORE_STORED) {
            ck_assert_uint_eq(cas, item_cas(it));
            ck_assert_uint_gt(cas, old_cas);
        } else {
            ck_assert_uint_eq(item_cas(it), old_cas);
        }
        item_remove(it);
        ck_assert_uint_eq(items_curr(), 1);
    }
    assert_no_leak();
}
END_TEST

START_TEST(test_set_replaces_but_holder_keeps_old)
{
    enum get_result why;
    struct item *old;

    set("k", "one");
    old = item_get("k", 1, &why);
    ck_assert_ptr_nonnull(old);
    set("k", "two");
    assert_value("k", "two");
    ck_assert(value_is(old, "one"));
    ck_assert_uint_eq(old->it_flags & ITEM_LINKED, 0);
    ck_assert_uint_eq(old->refcount, 1);
    ck_assert_uint_eq(chunks_used(), 2);
    item_remove(old);
    ck_assert_uint_eq(chunks_used(), 1);
    assert_no_leak();
}
END_TEST

START_TEST(test_append_grows_into_larger_class)
{
    char big[300];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    set("k", "ab");
    ck_assert_int_eq(put("k", big, 0, 0, STORE_MODE_APPEND, NULL),
                     STORE_STORED);
    {
        enum get_result why;
        struct item *it = item_get("k", 1, &why);
        ck_assert_ptr_nonnull(it);
        ck_assert_uint_eq(it->nbytes, 2 + 2 + strlen(big));
        ck_assert(memcmp(ITEM_data(it), "abxxx", 5) == 0);
        ck_assert(memcmp(ITEM_data(it) + it->nbytes - 3, "x\r\n", 3) == 0);
        ck_assert_uint_gt(it->slabs_clsid, slabs_clsid(ITEM_HDR_SIZE + 5));
        item_remove(it);
    }
    assert_no_leak();
}
END_TEST

START_TEST(test_append_too_large_not_stored)
{
    size_t half = 600 * 1024;
    char *val = malloc(half + 1);

    ck_assert_ptr_nonnull(val);
    memset(val, 'v', half);
    val[half] = '\0';
    set("k", val);
    /* 1.2 MB would exceed the 1 MB item limit: memcached says NOT_STORED
     * and keeps the old value. */
    ck_assert_int_eq(put("k", val, 0, 0, STORE_MODE_APPEND, NULL),
                     STORE_NOT_STORED);
    assert_value("k", val);
    free(val);
    ck_assert(item_delete("k", 1, 0, &(bool){false}));
    assert_no_leak();
}
END_TEST

/* --- chunked items ------------------------------------------------------- */

/* Pages of 64 KB, chunks up to 1 KB: values above about 1 KB are chained. */
static void setup_chunked(void)
{
    start(64 * 1024 * 1024, 1024, 64 * 1024);
}

/* A value of n bytes that differs at every offset in a 251-byte cycle. */
static char *pattern(size_t n, char base)
{
    char *v = malloc(n + 1);
    size_t i;

    ck_assert_ptr_nonnull(v);
    for (i = 0; i < n; i++) {
        v[i] = (char)(base + i % 23) ^ (char)(i / 251 % 2);
    }
    v[n] = '\0';
    return v;
}

struct take_case {
    size_t remain;              /* value bytes still to place */
    size_t full;                /* size of a full chunk */
    size_t want;                /* bytes the next chunk holds */
};

static const struct take_case take_cases[] = {
    {1, 1024, 1},
    {100, 1024, 100},
    {1024 - ITEM_CHUNK_HDR, 1024, 1024 - ITEM_CHUNK_HDR},
    {1024 - ITEM_CHUNK_HDR + 1, 1024, 1024 - ITEM_CHUNK_HDR},
    {1000000, 524288, 524288 - ITEM_CHUNK_HDR},
};

START_TEST(test_chunk_take)
{
    const struct take_case *c = &take_cases[_i];

    ck_assert_uint_eq(item_chunk_take(c->remain, c->full), c->want);
}
END_TEST

static bool count_piece(void *arg, const char *p, size_t n)
{
    size_t *total = arg;

    (void)p;
    ck_assert_uint_gt(n, 0);
    *total += n;
    return true;
}

/* Value sizes on both sides of each chunk boundary (968 bytes a chunk). */
static const size_t chunked_sizes[] = {
    900, 966, 967, 968, 969, 1934, 1935, 1936, 1937, 5000, 60000,
};

START_TEST(test_chunked_roundtrip)
{
    size_t n = chunked_sizes[_i];
    char *v = pattern(n, 'a');
    enum get_result why;
    struct item *it;
    size_t total = 0;

    set("big", v);
    assert_value("big", v);
    it = item_get("big", 3, &why);
    ck_assert_ptr_nonnull(it);
    ck_assert(item_is_chunked(it) == (ITEM_HDR_SIZE + 3 + n + 2 > 1024));
    ck_assert(item_crlf_ok(it));
    ck_assert(item_value_pieces(it, it->nbytes, count_piece, &total));
    ck_assert_uint_eq(total, n + 2);
    item_remove(it);
    ck_assert(item_delete("big", 3, 0, &(bool){false}));
    assert_no_leak();
    free(v);
}
END_TEST

START_TEST(test_chunked_append_prepend)
{
    char *a = pattern(1500, 'a');
    char *b = pattern(2500, 'A');
    char *ab = malloc(4001);
    char *bab = malloc(6501);

    ck_assert_ptr_nonnull(ab);
    ck_assert_ptr_nonnull(bab);
    snprintf(ab, 4001, "%s%s", a, b);
    snprintf(bab, 6501, "%s%s", b, ab);
    set("k", a);
    ck_assert_int_eq(put("k", b, 0, 0, STORE_MODE_APPEND, NULL),
                     STORE_STORED);
    assert_value("k", ab);
    ck_assert_int_eq(put("k", b, 0, 0, STORE_MODE_PREPEND, NULL),
                     STORE_STORED);
    assert_value("k", bab);
    ck_assert(item_delete("k", 1, 0, &(bool){false}));
    assert_no_leak();
    free(a);
    free(b);
    free(ab);
    free(bab);
}
END_TEST

START_TEST(test_chunked_size_limit)
{
    ck_assert(item_size_ok(3, 64 * 1024 - ITEM_HDR_SIZE - 3));
    ck_assert(!item_size_ok(3, 64 * 1024 - ITEM_HDR_SIZE - 2));
}
END_TEST

START_TEST(test_chunked_apply_store)
{
    char *v = pattern(3000, 'q');

    ck_assert_int_eq(item_apply_store("r", 1, hash("r", 1), 7, 0,
                                      item_next_version(), v, 3000, 0, NULL,
                                      false),
                     APPLY_DONE);
    assert_value("r", v);
    free(v);
}
END_TEST

/* --- versions ------------------------------------------------------------ */

START_TEST(test_versions_strictly_increase)
{
    uint64_t prev = 0;
    char key[16];
    int i;

    for (i = 0; i < 1000; i++) {
        uint64_t v = item_next_version();
        ck_assert_uint_gt(v, prev);
        prev = v;
    }
    /* Stores, same key or not, take fresh versions too. */
    for (i = 0; i < 200; i++) {
        uint64_t cas = 0;
        snprintf(key, sizeof(key), "k%d", i % 7);
        ck_assert_int_eq(put(key, "v", 0, 0, STORE_MODE_SET, &cas),
                         STORE_STORED);
        ck_assert_uint_gt(cas, prev);
        prev = cas;
    }
}
END_TEST

START_TEST(test_observed_version_moves_clock)
{
    uint64_t v = item_next_version();
    uint64_t far = v + ((uint64_t)1 << 40);

    item_observe_version(far);
    ck_assert_uint_gt(item_next_version(), far);
    /* An older one changes nothing. */
    item_observe_version(v);
    ck_assert_uint_gt(item_next_version(), far);
}
END_TEST

/* Late writes (bytes that waited in the kernel): versioned by their
 * receive time, applied only over older data, in their connection's
 * order, and never below what the clock stood at when they arrived. */
START_TEST(test_late_writes)
{
    struct write_origin o = {0, 0, false};
    uint64_t now = util_now_ms(), before, cas = 0, c1, c2;
    uint64_t sup = items_late_superseded();
    bool exists;

    before = item_next_version();
    item_clock_sample();                /* the clock before the stall */
    o.rx_ms = now - 2000;
    set("late_k", "new");               /* a fresh write, after rx */
    ck_assert_ptr_null(item_set_origin(&o));
    ck_assert_int_eq(put("late_k", "old", 0, 0, STORE_MODE_SET, &cas),
                     STORE_STORED);     /* answered as done ... */
    ck_assert_ptr_eq(item_set_origin(NULL), &o);
    assert_value("late_k", "new");      /* ... but it lost */
    ck_assert_uint_eq(items_late_superseded(), sup + 1);
    ck_assert_uint_eq(cas, 0);         /* no token for the newer item */

    /* Over an older key it applies, with a version below the clock's
     * but above what the clock stood at then; two pipelined late
     * writes keep their order. */
    item_set_origin(&o);
    ck_assert_int_eq(put("late_p", "a", 0, 0, STORE_MODE_SET, &c1),
                     STORE_STORED);
    ck_assert_int_eq(put("late_p", "b", 0, 0, STORE_MODE_SET, &c2),
                     STORE_STORED);
    item_set_origin(NULL);
    assert_value("late_p", "b");
    ck_assert_uint_gt(c2, c1);
    ck_assert_uint_gt(c1, before);
    ck_assert_uint_gt(item_next_version(), c2);

    /* A late add of a key deleted since (a pair keeps a tombstone) does
     * not bring it back. */
    items_set_tombstone_ttl(3600);
    set("late_l", "x");
    ck_assert(item_delete("late_l", 6, 0, &exists));
    o.rx_ms = now - 1500;
    o.next_late = 0;
    item_set_origin(&o);
    ck_assert_int_eq(put("late_l", "L", 0, 0, STORE_MODE_ADD, NULL),
                     STORE_STORED);
    item_set_origin(NULL);
    assert_value("late_l", NULL);
    items_set_tombstone_ttl(0);

    /* Bytes that did not wait take the clock's version. */
    o.rx_ms = util_now_ms();
    item_set_origin(&o);
    ck_assert_int_eq(put("late_k", "fresh", 0, 0, STORE_MODE_SET, &cas),
                     STORE_STORED);
    item_set_origin(NULL);
    assert_value("late_k", "fresh");
}
END_TEST

/* A late incr or decr read the key as it stood when its bytes arrived
 * (pecl memcache takes its session lock with incr): over a key written
 * since, it is refused and changes nothing; over a key not written since,
 * it applies, versioned by its arrival.  Without a late origin, as any
 * incr. */
START_TEST(test_late_delta)
{
    struct write_origin o = {0, 0, false};
    uint64_t now = util_now_ms(), value = 0, cas = 0;
    uint64_t sup = items_late_superseded();
    uint64_t old = (now - 5000) << 20;
    char buf[MAX_NUMBER_LEN + 1];

    item_clock_sample();
    set("late_lock", "0");              /* released after rx, elsewhere */
    ck_assert_int_eq(item_apply_store("late_ctr", 8, hash("late_ctr", 8), 0,
                                      0, old, "7", 1, 0, NULL, false),
                     APPLY_DONE);       /* last written before rx */
    o.rx_ms = now - 2000;
    item_set_origin(&o);
    ck_assert_int_eq(item_delta("late_lock", 9, true, 1, &value, buf, &cas),
                     DELTA_SUPERSEDED);
    cas = 0;
    ck_assert_int_eq(item_delta("late_ctr", 8, true, 1, &value, buf, &cas),
                     DELTA_OK);
    ck_assert_uint_eq(value, 8);
    item_set_origin(NULL);
    assert_value("late_lock", "0");
    assert_value("late_ctr", "8");
    ck_assert_uint_eq(items_late_superseded(), sup + 1);
    /* ... with its arrival's version: a write made after that arrival
     * (the peer's, received later) still wins */
    ck_assert_uint_gt(cas, old);
    ck_assert_uint_lt(cas, (now - 1000) << 20);
    ck_assert_int_eq(item_apply_store("late_ctr", 8, hash("late_ctr", 8), 0,
                                      0, (now - 1000) << 20, "20", 2, 0,
                                      NULL, false),
                     APPLY_DONE);
    assert_value("late_ctr", "20");
    /* Not late: applies. */
    cas = 0;
    ck_assert_int_eq(item_delta("late_lock", 9, true, 1, &value, buf, &cas),
                     DELTA_OK);
    ck_assert_uint_eq(value, 1);
}
END_TEST

/* After a stall's hold, add, incr and decr (the commands that take
 * locks) whose bytes waited 500 ms or more are not run; those that
 * waited less are, and so are other writes. */
START_TEST(test_stalled_locks)
{
    struct write_origin o = {0, 0, true};
    uint64_t now = util_now_ms(), value = 0, cas = 0;
    uint64_t refused = items_stalled_locks();
    char buf[MAX_NUMBER_LEN + 1];

    set("st_lock", "0");
    o.rx_ms = now - 600;
    item_set_origin(&o);
    ck_assert_int_eq(put("st_add", "1", 0, 0, STORE_MODE_ADD, NULL),
                     STORE_NOT_STORED);
    ck_assert_int_eq(item_delta("st_lock", 7, true, 1, &value, buf, &cas),
                     DELTA_SUPERSEDED);
    ck_assert_int_eq(put("st_set", "s", 0, 0, STORE_MODE_SET, NULL),
                     STORE_STORED);
    o.rx_ms = util_now_ms() - 100;
    ck_assert_int_eq(put("st_add2", "1", 0, 0, STORE_MODE_ADD, NULL),
                     STORE_STORED);
    cas = 0;
    ck_assert_int_eq(item_delta("st_lock", 7, true, 1, &value, buf, &cas),
                     DELTA_OK);
    item_set_origin(NULL);
    assert_value("st_add", NULL);
    assert_value("st_set", "s");
    assert_value("st_add2", "1");
    assert_value("st_lock", "1");
    ck_assert_uint_eq(items_stalled_locks(), refused + 2);
}
END_TEST

START_TEST(test_node_id_in_low_bits)
{
    uint64_t cas = 0;

    items_set_node_id(7);
    ck_assert_uint_eq(item_next_version() & 0xFF, 7);
    ck_assert_int_eq(put("k", "v", 0, 0, STORE_MODE_SET, &cas),
                     STORE_STORED);
    ck_assert_uint_eq(cas & 0xFF, 7);
    items_set_node_id(0);
    ck_assert_uint_eq(item_next_version() & 0xFF, 0);
}
END_TEST

START_TEST(test_use_cas_false_reports_zero)
{
    enum get_result why;
    struct item *it;
    uint64_t cas = 99;

    settings.use_cas = false;
    ck_assert_int_eq(put("k", "v", 0, 0, STORE_MODE_SET, &cas),
                     STORE_STORED);
    ck_assert_uint_eq(cas, 0);
    it = item_get("k", 1, &why);
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_ne(it->version, 0);
    ck_assert_uint_eq(item_cas(it), 0);
    item_remove(it);
}
END_TEST

/* --- expiry and touch ---------------------------------------------------- */

START_TEST(test_get_expired_is_reclaimed)
{
    uint32_t now = current_time;
    enum get_result why;

    ck_assert_int_eq(put("e", "v", 0, now + 10, STORE_MODE_SET, NULL),
                     STORE_STORED);
    current_time = now + 9;
    assert_value("e", "v");
    current_time = now + 10;
    ck_assert_ptr_null(item_get("e", 1, &why));
    ck_assert_int_eq(why, GET_EXPIRED);
    ck_assert_uint_eq(items_curr(), 0);
    ck_assert_uint_eq(chunks_used(), 0);
    ck_assert_ptr_null(item_get("e", 1, &why));
    ck_assert_int_eq(why, GET_MISS);
}
END_TEST

START_TEST(test_expired_item_is_missing_for_every_mode)
{
    uint32_t now = current_time;

    ck_assert_int_eq(put("e", "v", 0, now + 1, STORE_MODE_SET, NULL),
                     STORE_STORED);
    current_time = now + 1;
    ck_assert_int_eq(put("e", "x", 0, 0, STORE_MODE_REPLACE, NULL),
                     STORE_NOT_STORED);
    ck_assert_int_eq(put("e", "x", 0, 0, STORE_MODE_APPEND, NULL),
                     STORE_NOT_STORED);
    ck_assert_int_eq(put("e", "y", 0, 0, STORE_MODE_ADD, NULL),
                     STORE_STORED);
    assert_value("e", "y");
    assert_no_leak();
}
END_TEST

START_TEST(test_touch_changes_deadline)
{
    uint32_t now = current_time;
    enum get_result why;
    struct item *it;

    ck_assert_int_eq(put("t", "v", 0, now + 10, STORE_MODE_SET, NULL),
                     STORE_STORED);
    it = item_touch("t", 1, now + 100, &why);
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(it->exptime, now + 100);
    item_remove(it);
    current_time = now + 50;
    assert_value("t", "v");
    /* Touch to "never". */
    it = item_touch("t", 1, 0, &why);
    ck_assert_ptr_nonnull(it);
    item_remove(it);
    current_time = now + 5000;
    assert_value("t", "v");
    ck_assert_ptr_null(item_touch("none", 4, 0, &why));
    ck_assert_int_eq(why, GET_MISS);
}
END_TEST

/* --- flush --------------------------------------------------------------- */

START_TEST(test_flush_now_kills_older_only)
{
    enum get_result why;

    set("a", "1");
    set("b", "2");
    item_flush(0);
    set("c", "3");
    ck_assert_ptr_null(item_get("a", 1, &why));
    ck_assert_int_eq(why, GET_FLUSHED);
    ck_assert_ptr_null(item_get("b", 1, &why));
    ck_assert_int_eq(why, GET_FLUSHED);
    assert_value("c", "3");
    ck_assert_uint_eq(items_curr(), 1);
    /* A flushed key can be added again. */
    ck_assert_int_eq(put("a", "4", 0, 0, STORE_MODE_ADD, NULL), STORE_STORED);
    assert_value("a", "4");
    assert_no_leak();
}
END_TEST

START_TEST(test_flush_in_past_is_now)
{
    set("a", "1");
    item_flush(current_time - 5);
    assert_value("a", NULL);
    set("b", "2");
    assert_value("b", "2");
}
END_TEST

START_TEST(test_delayed_flush_waits_for_deadline)
{
    uint32_t now = current_time;
    enum get_result why;

    set("a", "1");
    item_flush(now + 10);
    assert_value("a", "1");
    /* Stored after the command but before the deadline: also flushed at
     * the deadline, as in memcached. */
    set("b", "2");
    current_time = now + 5;
    assert_value("a", "1");
    assert_value("b", "2");
    current_time = now + 10;
    ck_assert_ptr_null(item_get("a", 1, &why));
    ck_assert_int_eq(why, GET_FLUSHED);
    ck_assert_ptr_null(item_get("b", 1, &why));
    ck_assert_int_eq(why, GET_FLUSHED);
    /* Versions follow the wall clock, which this test does not move; fold
     * in a version from after the deadline as if it had. */
    item_observe_version(((uint64_t)(now + 11) * 1000) << 20);
    set("c", "3");
    assert_value("c", "3");
}
END_TEST

/* --- delete -------------------------------------------------------------- */

START_TEST(test_delete_with_cas)
{
    uint64_t cas = 0;
    bool exists = false;

    ck_assert_int_eq(put("d", "v", 0, 0, STORE_MODE_SET, &cas),
                     STORE_STORED);
    ck_assert(!item_delete("d", 1, cas + 1, &exists));
    ck_assert(exists);
    assert_value("d", "v");
    ck_assert(item_delete("d", 1, cas, &exists));
    ck_assert(exists);
    assert_value("d", NULL);
    ck_assert(!item_delete("d", 1, 0, &exists));
    ck_assert(!exists);
    ck_assert(!item_delete("d", 1, cas, &exists));
    ck_assert(!exists);
    assert_no_leak();
}
END_TEST

START_TEST(test_delete_unconditional)
{
    bool exists;

    set("d", "v");
    set("e", "w");
    ck_assert(item_delete("d", 1, 0, &exists));
    assert_value("d", NULL);
    assert_value("e", "w");
    ck_assert_uint_eq(items_curr(), 1);
    assert_no_leak();
}
END_TEST

/* --- incr / decr --------------------------------------------------------- */

struct delta_case {
    const char *start;          /* stored value */
    bool incr;
    uint64_t delta;
    enum delta_result want;
    uint64_t value;             /* on DELTA_OK */
    const char *stored;         /* value afterwards */
};

static const struct delta_case delta_cases[] = {
    {"10", true, 5, DELTA_OK, 15, "15"},
    {"0", true, 0, DELTA_OK, 0, "0"},
    {"99", true, 1, DELTA_OK, 100, "100"},      /* longer: new item */
    {"100", false, 1, DELTA_OK, 99, "99 "},     /* shorter: padded */
    {"1000", false, 999, DELTA_OK, 1, "1   "},
    {"18446744073709551615", true, 1, DELTA_OK, 0,
     "0                   "},                   /* wraps at 2^64 */
    {"18446744073709551615", true, 2, DELTA_OK, 1,
     "1                   "},
    {"18446744073709551614", true, 1, DELTA_OK, UINT64_MAX,
     "18446744073709551615"},
    {"5", false, 10, DELTA_OK, 0, "0"},         /* decr floors at 0 */
    {"0", false, 1, DELTA_OK, 0, "0"},
    {"7", false, UINT64_MAX, DELTA_OK, 0, "0"},
    {"abc", true, 1, DELTA_NON_NUMERIC, 0, "abc"},
    {"12abc", true, 1, DELTA_NON_NUMERIC, 0, "12abc"},
    {"-5", false, 1, DELTA_NON_NUMERIC, 0, "-5"},
    {"", true, 1, DELTA_NON_NUMERIC, 0, ""},
    {"18446744073709551616", true, 1, DELTA_NON_NUMERIC, 0,
     "18446744073709551616"},
};

START_TEST(test_delta_table)
{
    const struct delta_case *c = &delta_cases[_i];
    char buf[MAX_NUMBER_LEN + 1];
    char want[MAX_NUMBER_LEN + 1];
    uint64_t value = 12345;
    uint64_t cas = 0;
    enum delta_result r;

    set("n", c->start);
    r = item_delta("n", 1, c->incr, c->delta, &value, buf, &cas);
    ck_assert_int_eq(r, c->want);
    if (r == DELTA_OK) {
        ck_assert_uint_eq(value, c->value);
        snprintf(want, sizeof(want), "%llu", (unsigned long long)c->value);
        ck_assert_str_eq(buf, want);
        ck_assert_uint_eq(cas, cas_of("n"));
    }
    assert_value("n", c->stored);
    ck_assert_uint_eq(items_curr(), 1);
    assert_no_leak();
}
END_TEST

START_TEST(test_delta_missing)
{
    char buf[MAX_NUMBER_LEN + 1];
    uint64_t value, cas = 0;

    ck_assert_int_eq(item_delta("none", 4, true, 1, &value, buf, &cas),
                     DELTA_NOT_FOUND);
    ck_assert_uint_eq(items_curr(), 0);
}
END_TEST

START_TEST(test_delta_with_cas)
{
    char buf[MAX_NUMBER_LEN + 1];
    uint64_t value, old_cas = 0, cas;

    ck_assert_int_eq(put("n", "5", 0, 0, STORE_MODE_SET, &old_cas),
                     STORE_STORED);
    cas = old_cas + 1;
    ck_assert_int_eq(item_delta("n", 1, true, 1, &value, buf, &cas),
                     DELTA_EXISTS);
    assert_value("n", "5");
    cas = old_cas;
    ck_assert_int_eq(item_delta("n", 1, true, 1, &value, buf, &cas),
                     DELTA_OK);
    ck_assert_uint_gt(cas, old_cas);
    ck_assert_uint_eq(cas, cas_of("n"));
    assert_value("n", "6");
}
END_TEST

START_TEST(test_delta_keeps_flags_and_exptime)
{
    char buf[MAX_NUMBER_LEN + 1];
    uint32_t exp = current_time + 100;
    uint64_t value, cas = 0;
    enum get_result why;
    struct item *it;

    /* "99" + 1 needs a new, longer item. */
    ck_assert_int_eq(put("n", "99", 5, exp, STORE_MODE_SET, NULL),
                     STORE_STORED);
    ck_assert_int_eq(item_delta("n", 1, true, 1, &value, buf, &cas),
                     DELTA_OK);
    it = item_get("n", 1, &why);
    ck_assert_ptr_nonnull(it);
    ck_assert(value_is(it, "100"));
    ck_assert_uint_eq(it->flags, 5);
    ck_assert_uint_eq(it->exptime, exp);
    item_remove(it);
}
END_TEST

START_TEST(test_delta_does_not_rewrite_referenced_item)
{
    char buf[MAX_NUMBER_LEN + 1];
    uint64_t value, cas = 0;
    enum get_result why;
    struct item *held;

    set("n", "100");
    held = item_get("n", 1, &why);
    ck_assert_ptr_nonnull(held);
    ck_assert_int_eq(item_delta("n", 1, false, 1, &value, buf, &cas),
                     DELTA_OK);
    /* A reader mid-send keeps its bytes; the new item is exact. */
    ck_assert(value_is(held, "100"));
    assert_value("n", "99");
    item_remove(held);
    assert_no_leak();
}
END_TEST

/* --- references ---------------------------------------------------------- */

START_TEST(test_refcounts)
{
    struct item *it = mk("r", "v", 0, 0);
    enum get_result why;
    struct item *got;
    uint64_t cas = 0;
    bool exists;

    ck_assert_uint_eq(it->refcount, 1);
    ck_assert_int_eq(item_store(it, STORE_MODE_SET, &cas), STORE_STORED);
    ck_assert_uint_eq(it->refcount, 2);
    ck_assert_uint_ne(it->it_flags & ITEM_LINKED, 0);
    item_remove(it);
    ck_assert_uint_eq(it->refcount, 1);
    got = item_get("r", 1, &why);
    ck_assert_ptr_eq(got, it);
    ck_assert_uint_eq(got->refcount, 2);
    /* Deleted while held: unlinked, but the chunk stays ours. */
    ck_assert(item_delete("r", 1, 0, &exists));
    ck_assert_uint_eq(got->refcount, 1);
    ck_assert_uint_eq(got->it_flags & ITEM_LINKED, 0);
    ck_assert_uint_eq(items_curr(), 0);
    ck_assert_uint_eq(chunks_used(), 1);
    ck_assert(value_is(got, "v"));
    item_remove(got);
    ck_assert_uint_eq(chunks_used(), 0);
}
END_TEST

START_TEST(test_unstored_item_freed_by_remove)
{
    struct item *it = mk("u", "v", 0, 0);

    ck_assert_uint_eq(chunks_used(), 1);
    item_remove(it);
    ck_assert_uint_eq(chunks_used(), 0);
    assert_value("u", NULL);
}
END_TEST

/* --- allocation limits --------------------------------------------------- */

START_TEST(test_alloc_too_large)
{
    char key[KEY_MAX_LENGTH + 2];
    enum alloc_result why;

    ck_assert_ptr_null(item_alloc("k", 1, 0, 0, 2 * 1024 * 1024, &why));
    ck_assert_int_eq(why, ALLOC_TOO_LARGE);
    memset(key, 'k', sizeof(key));
    ck_assert_ptr_null(item_alloc(key, KEY_MAX_LENGTH + 1, 0, 0, 3, &why));
    ck_assert_int_eq(why, ALLOC_TOO_LARGE);
    ck_assert(!item_size_ok(1, 2 * 1024 * 1024));
    ck_assert(item_size_ok(KEY_MAX_LENGTH, 1000));
    ck_assert_uint_eq(chunks_used(), 0);
}
END_TEST

/* --- eviction (tiny instance) -------------------------------------------- */

/* Store k<first>, k<first+1>... ("x" values) until class 1 is full;
 * return its chunks per page. */
static unsigned fill_from(unsigned first)
{
    uint64_t used, nfree, req;
    unsigned i;
    char key[16];

    ck_assert_uint_eq(slabs_clsid(ITEM_HDR_SIZE + 4 + 3), 1);
    for (i = first;; i++) {
        slabs_class_stats(1, &used, &nfree, &req);
        if (used > 0 && nfree == 0) {
            break;
        }
        snprintf(key, sizeof(key), "k%03u", i);
        set(key, "x");
    }
    ck_assert_uint_gt(used, 5);
    return (unsigned)used;
}

static unsigned fill_class(void)
{
    return fill_from(0);
}

static void assert_present(unsigned from, unsigned to)
{
    char key[16];
    unsigned i;

    for (i = from; i < to; i++) {
        snprintf(key, sizeof(key), "k%03u", i);
        assert_value(key, "x");
    }
}

START_TEST(test_evicts_lru_tail)
{
    unsigned per = fill_class();
    struct lru_stats st;

    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.evicted, 0);
    ck_assert_uint_eq(st.number, per);
    set("new", "x");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.evicted, 1);
    ck_assert_uint_eq(st.evicted_unfetched, 1);
    ck_assert_uint_eq(st.number, per);
    assert_value("k000", NULL);
    assert_present(1, per);
    assert_value("new", "x");
    ck_assert_uint_eq(items_curr(), per);
    assert_no_leak();
}
END_TEST

START_TEST(test_evicts_in_age_order)
{
    unsigned per = fill_class();
    char key[16];
    unsigned i;

    for (i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "n%03u", i);
        set(key, "x");
    }
    assert_value("k000", NULL);
    assert_value("k001", NULL);
    assert_value("k002", NULL);
    assert_present(3, per);
}
END_TEST

START_TEST(test_read_twice_moves_to_warm)
{
    unsigned per = fill_class();
    struct lru_stats st;

    /* The second read makes k000 ACTIVE: when a store pushes HOT's tail
     * down, it goes to WARM instead of COLD, and k001 is evicted. */
    assert_value("k000", "x");
    assert_value("k000", "x");
    set("new", "x");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.evicted, 1);
    ck_assert_uint_eq(st.moves_to_warm, 1);
    ck_assert_uint_eq(st.number_seg[LRU_WARM], 1);
    assert_value("k001", NULL);
    assert_value("k000", "x");
    assert_present(2, per);
}
END_TEST

START_TEST(test_eviction_rescues_active_cold_tail)
{
    unsigned per = fill_class();
    struct lru_stats st;

    /* The maintainer's pass leaves most of the class in COLD, k000 at
     * its tail; read twice, a store needing room sends k000 to WARM
     * and evicts the next one. */
    ck_assert_int_gt(items_lru_juggle(1), 0);
    items_lru_stats(1, &st);
    ck_assert_uint_gt(st.number_seg[LRU_COLD], per / 2);
    assert_value("k000", "x");
    assert_value("k000", "x");
    set("new", "x");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.evicted, 1);
    ck_assert_uint_eq(st.moves_to_warm, 1);
    assert_value("k001", NULL);
    assert_value("k000", "x");
}
END_TEST

START_TEST(test_flat_lru_evicts_read_tail)
{
    struct lru_stats st;

    /* memcached's flat LRU (no_modern) has no second chance: a read
     * within ITEM_UPDATE_INTERVAL does not move the item. */
    settings.lru_segmented = false;
    fill_class();
    assert_value("k000", "x");
    assert_value("k000", "x");
    set("new", "x");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.evicted, 1);
    ck_assert_uint_eq(st.number_seg[LRU_COLD], st.number);
    assert_value("k000", NULL);
    assert_value("k001", "x");
}
END_TEST

START_TEST(test_temp_lru_is_never_evicted)
{
    uint32_t now = current_time;
    struct lru_stats st;

    settings.temp_lru = true;
    settings.temporary_ttl = 61;
    ck_assert_int_eq(put("k000", "x", 0, now + 30, STORE_MODE_SET, NULL),
                     STORE_STORED);
    fill_from(1);
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.number_seg[LRU_TEMP], 1);
    set("new", "x");
    set("new2", "x");
    assert_value("k000", "x");
    assert_value("k001", NULL);
    assert_value("k002", NULL);
    /* Once dead it is the maintainer's to reclaim. */
    current_time = now + 31;
    ck_assert_int_gt(items_lru_juggle(1), 0);
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.number_seg[LRU_TEMP], 0);
    ck_assert_uint_eq(st.reclaimed, 1);
}
END_TEST

START_TEST(test_flat_lru_reclaims_dead_tail_before_growing)
{
    uint32_t now = current_time;
    struct lru_stats st;

    /* issue_183: with memory to spare, a store still reuses the dead
     * tail first (flat LRU only; segmented leaves it to the maintainer). */
    settings.lru_segmented = false;
    ck_assert_int_eq(put("old", "x", 0, now + 1, STORE_MODE_SET, NULL),
                     STORE_STORED);
    current_time = now + 2;
    set("new", "x");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.reclaimed, 1);
    ck_assert_uint_eq(st.evicted, 0);
    ck_assert_uint_eq(st.number, 1);
}
END_TEST

START_TEST(test_juggle_keeps_hot_within_its_share)
{
    struct lru_stats st;
    char key[16];
    unsigned i;

    /* 20% of ten equal items may stay in HOT; the rest go to COLD. */
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        set(key, "x");
    }
    ck_assert_int_gt(items_lru_juggle(1), 0);
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.number_seg[LRU_HOT], 2);
    ck_assert_uint_eq(st.number_seg[LRU_COLD], 8);
    ck_assert_uint_eq(st.moves_to_cold, 8);
    /* The oldest went first: read twice it is ACTIVE, and the next
     * pass finds it at COLD's tail and sends it to WARM. */
    assert_value("k0", "x");
    assert_value("k0", "x");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.number_seg[LRU_WARM], 0);
    ck_assert_int_eq(items_lru_juggle(1), 1);
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.number_seg[LRU_WARM], 1);
    ck_assert_uint_eq(st.moves_to_warm, 1);
    ck_assert_int_eq(items_lru_juggle(1), 0);
}
END_TEST

START_TEST(test_mode_flat_drains_into_cold)
{
    struct lru_stats st;
    char key[16];
    unsigned i;

    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        set(key, "x");
    }
    items_lru_juggle(1);
    settings.lru_segmented = false;     /* lru mode flat */
    items_lru_juggle(1);
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.number_seg[LRU_HOT], 0);
    ck_assert_uint_eq(st.number_seg[LRU_COLD], 10);
}
END_TEST

START_TEST(test_juggle_reclaims_dead_items)
{
    uint32_t now = current_time;
    struct lru_stats st;
    char key[16];
    unsigned i;

    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        ck_assert_int_eq(put(key, "x", 0, now + 1, STORE_MODE_SET, NULL),
                         STORE_STORED);
    }
    current_time = now + 2;
    ck_assert_int_gt(items_lru_juggle(1), 0);
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.reclaimed, 10);
    ck_assert_uint_eq(st.number, 0);
    ck_assert_uint_eq(items_curr(), 0);
}
END_TEST

START_TEST(test_reset_lru_stats_keeps_counts)
{
    struct lru_stats st;

    settings.lru_segmented = false;
    fill_class();
    set("new", "x");
    items_reset_lru_stats();
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.evicted, 0);
    ck_assert_uint_ne(st.number, 0);
    ck_assert_uint_ne(st.bytes, 0);
}
END_TEST

START_TEST(test_class_of_read_items_still_evicts)
{
    unsigned per = fill_class();
    struct lru_stats st;
    char key[16];
    unsigned i;

    /* Every item read once: all have a second chance to spend, and the
     * store must still evict one rather than report out of memory. */
    for (i = 0; i < per; i++) {
        snprintf(key, sizeof(key), "k%03u", i);
        assert_value(key, "x");
    }
    set("new", "x");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.evicted, 1);
    ck_assert_uint_eq(st.outofmemory, 0);
    assert_value("new", "x");
    ck_assert_uint_eq(items_curr(), per);
}
END_TEST

START_TEST(test_referenced_item_not_evicted)
{
    /* k000, the LRU tail, is held (as by a reply being sent) but was
     * never read, so only its reference protects it. */
    struct item *held = mk("k000", "x", 0, 0);
    struct lru_stats st;
    uint64_t cas = 0;
    unsigned per;

    ck_assert_int_eq(item_store(held, STORE_MODE_SET, &cas), STORE_STORED);
    per = fill_from(1);
    set("new", "x");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.evicted, 1);
    ck_assert_uint_ge(st.lrutail_reflocked, 1);
    ck_assert_uint_ne(held->it_flags & ITEM_LINKED, 0);
    assert_value("k001", NULL);
    assert_value("k000", "x");
    assert_present(2, per);
    item_remove(held);
    assert_no_leak();
}
END_TEST

START_TEST(test_no_evict_mode_fails_when_full)
{
    unsigned per;
    enum alloc_result why;
    struct lru_stats st;

    settings.evict_to_free = false;
    per = fill_class();
    ck_assert_ptr_null(item_alloc("new", 3, 0, 0, 3, &why));
    ck_assert_int_eq(why, ALLOC_NO_MEMORY);
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.outofmemory, 1);
    ck_assert_uint_eq(st.evicted, 0);
    assert_present(0, per);
    /* Other classes still have room. */
    ck_assert_int_eq(put("big", "0123456789012345678901234567890123456789"
                         "01234567890123456789", 0, 0, STORE_MODE_SET, NULL),
                     STORE_STORED);
}
END_TEST

START_TEST(test_no_evict_mode_reclaims_expired_tail)
{
    uint32_t now = current_time;
    struct lru_stats st;
    unsigned per;

    settings.evict_to_free = false;
    ck_assert_int_eq(put("k000", "x", 0, now + 1, STORE_MODE_SET, NULL),
                     STORE_STORED);
    per = fill_from(1);
    current_time = now + 1;
    set("new", "x");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.reclaimed, 1);
    ck_assert_uint_eq(st.expired_unfetched, 1);
    ck_assert_uint_eq(st.evicted, 0);
    assert_value("k000", NULL);
    assert_present(1, per);
    assert_value("new", "x");
    assert_no_leak();
}
END_TEST

/* --- LRU and stats ------------------------------------------------------- */

START_TEST(test_lru_stats_number_and_bytes)
{
    struct lru_stats st;
    bool exists;

    set("a", "1");
    set("bb", "22");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.number, 2);
    ck_assert_uint_eq(st.bytes, 2 * ITEM_HDR_SIZE + (1 + 3) + (2 + 4));
    set("a", "333");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.number, 2);
    ck_assert_uint_eq(st.bytes, 2 * ITEM_HDR_SIZE + (1 + 5) + (2 + 4));
    ck_assert(item_delete("bb", 2, 0, &exists));
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.number, 1);
    ck_assert_uint_eq(st.bytes, ITEM_HDR_SIZE + 1 + 5);
}
END_TEST

START_TEST(test_cachedump_newest_first)
{
    struct strbuf sb;

    set("k1", "a");
    set("k2", "bb");
    set("k3", "ccc");
    sb_init(&sb);
    ck_assert(items_cachedump(1, 0, &sb));
    ck_assert_str_eq(sb.buf, "ITEM k3 [3 b; 0 s]\r\n"
                             "ITEM k2 [2 b; 0 s]\r\n"
                             "ITEM k1 [1 b; 0 s]\r\n");
    sb_free(&sb);
    sb_init(&sb);
    ck_assert(items_cachedump(1, 1, &sb));
    ck_assert_str_eq(sb.buf, "ITEM k3 [3 b; 0 s]\r\n");
    sb_free(&sb);
    ck_assert(!items_cachedump(0, 0, &sb));
    ck_assert(!items_cachedump(slabs_count() + 1, 0, &sb));
}
END_TEST

START_TEST(test_bump_at_most_once_a_minute)
{
    uint32_t now = current_time;
    struct lru_stats st;

    settings.lru_segmented = false;     /* segmented: no list moves */
    set("a", "1");
    set("b", "2");
    assert_value("a", "1");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.moves_within_lru, 0);
    current_time = now + ITEM_UPDATE_INTERVAL + 1;
    assert_value("a", "1");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.moves_within_lru, 1);
    assert_value("a", "1");
    items_lru_stats(1, &st);
    ck_assert_uint_eq(st.moves_within_lru, 1);
}
END_TEST

/* --- mutation hook ------------------------------------------------------- */

struct event {
    enum mutation_op op;
    char key[16];               /* "" for MUT_FLUSH */
    char value[16];             /* value of a MUT_STORE */
    uint64_t version;
    uint32_t exptime;
};

static struct event events[32];
static unsigned nevents;

static void record(enum mutation_op op, const struct item *it,
                   uint64_t version, uint32_t exptime)
{
    struct event *e = &events[nevents++ % 32];

    memset(e, 0, sizeof(*e));
    e->op = op;
    e->version = version;
    e->exptime = exptime;
    if (it != NULL) {
        snprintf(e->key, sizeof(e->key), "%.*s", (int)it->nkey,
                 ITEM_key(it));
        if (op == MUT_STORE) {
            snprintf(e->value, sizeof(e->value), "%.*s",
                     (int)it->nbytes - 2, ITEM_data(it));
        }
    }
}

static void hook_setup(void)
{
    setup();
    nevents = 0;
    items_set_mutation_hook(record);
}

START_TEST(test_hook_sees_each_mutation)
{
    uint32_t now = current_time;
    uint64_t cas = 0, cas2 = 0;
    char buf[MAX_NUMBER_LEN + 1];
    enum get_result why;
    struct item *it;
    uint64_t value;
    bool exists;

    ck_assert_int_eq(put("a", "1", 0, now + 10, STORE_MODE_SET, &cas),
                     STORE_STORED);
    ck_assert_uint_eq(nevents, 1);
    ck_assert_int_eq(events[0].op, MUT_STORE);
    ck_assert_str_eq(events[0].key, "a");
    ck_assert_str_eq(events[0].value, "1");
    ck_assert_uint_eq(events[0].version, cas);
    ck_assert_uint_eq(events[0].exptime, now + 10);

    it = item_touch("a", 1, now + 20, &why);
    ck_assert_ptr_nonnull(it);
    item_remove(it);
    ck_assert_uint_eq(nevents, 2);
    ck_assert_int_eq(events[1].op, MUT_TOUCH);
    ck_assert_str_eq(events[1].key, "a");
    ck_assert_uint_eq(events[1].version, cas);
    ck_assert_uint_eq(events[1].exptime, now + 20);

    ck_assert_int_eq(put("a", "2", 0, 0, STORE_MODE_APPEND, &cas2),
                     STORE_STORED);
    ck_assert_uint_eq(nevents, 3);
    ck_assert_int_eq(events[2].op, MUT_STORE);
    ck_assert_str_eq(events[2].value, "12");
    ck_assert_uint_eq(events[2].version, cas2);
    ck_assert_uint_gt(cas2, cas);
    ck_assert_uint_eq(events[2].exptime, now + 20);

    cas = 0;
    ck_assert_int_eq(item_delta("a", 1, true, 5, &value, buf, &cas),
                     DELTA_OK);
    ck_assert_uint_eq(nevents, 4);
    ck_assert_int_eq(events[3].op, MUT_STORE);
    ck_assert_str_eq(events[3].value, "17");
    ck_assert_uint_eq(events[3].version, cas);
    ck_assert_uint_gt(cas, cas2);

    ck_assert(item_delete("a", 1, 0, &exists));
    ck_assert_uint_eq(nevents, 5);
    ck_assert_int_eq(events[4].op, MUT_DELETE);
    ck_assert_str_eq(events[4].key, "a");
    ck_assert_uint_gt(events[4].version, cas);

    item_flush(0);
    ck_assert_uint_eq(nevents, 6);
    ck_assert_int_eq(events[5].op, MUT_FLUSH);
    ck_assert_str_eq(events[5].key, "");
    ck_assert_uint_gt(events[5].version, events[4].version);
    ck_assert_uint_eq(events[5].exptime, now);

    item_flush(now + 30);
    ck_assert_uint_eq(nevents, 7);
    ck_assert_int_eq(events[6].op, MUT_FLUSH);
    ck_assert_uint_eq(events[6].version, ((uint64_t)(now + 30) * 1000) << 20);
    /* Like memcached, a deadline takes effect one second early. */
    ck_assert_uint_eq(events[6].exptime, now + 29);
}
END_TEST

START_TEST(test_hook_silent_on_failures)
{
    char buf[MAX_NUMBER_LEN + 1];
    uint64_t cas = 0, value;
    enum get_result why;
    bool exists;

    set("a", "x");
    ck_assert_uint_eq(nevents, 1);
    ck_assert_int_eq(put("a", "y", 0, 0, STORE_MODE_ADD, NULL),
                     STORE_NOT_STORED);
    ck_assert_int_eq(put("b", "y", 0, 0, STORE_MODE_REPLACE, NULL),
                     STORE_NOT_STORED);
    cas = 1;
    ck_assert_int_eq(put("a", "y", 0, 0, STORE_MODE_CAS, &cas),
                     STORE_EXISTS);
    ck_assert(!item_delete("b", 1, 0, &exists));
    ck_assert(!item_delete("a", 1, 1, &exists));
    cas = 0;
    ck_assert_int_eq(item_delta("a", 1, true, 1, &value, buf, &cas),
                     DELTA_NON_NUMERIC);
    ck_assert_ptr_null(item_touch("b", 1, 0, &why));
    assert_value("a", "x");
    ck_assert_uint_eq(nevents, 1);
}
END_TEST

/* --- pair digest, a slice at a time ---------------------------------------- */

static void digest_all(struct digest_walk *d, uint64_t slice)
{
    int steps = 0;

    items_digest_begin(d);
    while (!items_digest_step(d, slice)) {
        ck_assert_int_lt(++steps, 1 << 20);
    }
}

START_TEST(test_digest_same_in_any_slice_size)
{
    struct digest_walk whole, sliced;
    char key[32];
    int i;

    for (i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        set(key, "v");
    }
    digest_all(&whole, (uint64_t)1 << 40);
    digest_all(&sliced, 7);
    ck_assert_uint_eq(whole.count, 3000);
    ck_assert_uint_eq(sliced.count, 3000);
    ck_assert_uint_eq(sliced.sum, whole.sum);
    set("k1", "other");
    digest_all(&sliced, 100);
    ck_assert_uint_eq(sliced.count, 3000);
    ck_assert_uint_ne(sliced.sum, whole.sum);
}
END_TEST

/* The anti-entropy check sums items alive through a horizon (until):
 * one that dies sooner is left out, as the peer leaves it out. */
START_TEST(test_digest_until_leaves_out_dying_items)
{
    uint32_t now = current_time;
    struct digest_walk d;
    int steps = 0;

    set("forever", "v");
    ck_assert_int_eq(put("soon", "v", 0, now + 5, STORE_MODE_SET, NULL),
                     STORE_STORED);
    ck_assert_int_eq(put("later", "v", 0, now + 50, STORE_MODE_SET, NULL),
                     STORE_STORED);
    digest_all(&d, 7);
    ck_assert_uint_eq(d.count, 3);      /* until 0: alive now */
    items_digest_begin(&d);
    d.until = now + 10;
    while (!items_digest_step(&d, 1)) {
        ck_assert_int_lt(++steps, 1 << 20);
    }
    ck_assert_uint_eq(d.count, 2);      /* "soon" dies before */
    ck_assert_uint_eq(d.until, now + 10);
}
END_TEST

/* The table doubles halfway through: items already summed move to
 * buckets the walk has not reached yet.  The walk must start over, not
 * count them twice. */
START_TEST(test_digest_across_table_doubling)
{
    struct digest_walk whole, d;
    char key[32];
    int i, steps = 0;

    for (i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        set(key, "v");
    }
    digest_all(&whole, (uint64_t)1 << 40);
    items_digest_begin(&d);
    for (i = 0; i < 10; i++) {
        ck_assert(!items_digest_step(&d, 200));
    }
    ck_assert_uint_gt(d.count, 0);
    assoc_expand_now();
    while (!items_digest_step(&d, 200)) {
        ck_assert_int_lt(++steps, 1 << 20);
    }
    ck_assert_uint_eq(d.count, 5000);
    ck_assert_uint_eq(d.sum, whole.sum);
}
END_TEST

/* --- applying the peer's stream ------------------------------------------ */

static enum apply_result apply(const char *key, const char *val,
                               uint32_t flags, uint64_t version)
{
    return item_apply_store(key, strlen(key), hash(key, strlen(key)), flags,
                            0, version, val, strlen(val), false, NULL,
                            false);
}

/* The same record arriving in a full copy (s). */
static enum apply_result apply_copy(const char *key, const char *val,
                                    uint32_t exptime, uint64_t version)
{
    return item_apply_store(key, strlen(key), hash(key, strlen(key)), 0,
                            exptime, version, val, strlen(val), false, NULL,
                            true);
}

/* The LRU list key's item is on (it must exist). */
static unsigned lru_of(const char *key)
{
    struct item *it = item_peek(key, strlen(key));
    unsigned seg;

    ck_assert_ptr_nonnull(it);
    seg = it->lru;
    item_remove(it);
    return seg;
}

static uint64_t requested_bytes(unsigned id)
{
    uint64_t used, nfree, req;

    slabs_class_stats(id, &used, &nfree, &req);
    return req;
}

START_TEST(test_apply_rewrites_unheld_item_in_place)
{
    struct item *it, *again;
    struct lru_stats st;
    unsigned id;

    ck_assert_int_eq(apply("k", "first", 1, 100), APPLY_DONE);
    it = item_peek("k", 1);
    ck_assert_ptr_nonnull(it);
    id = it->slabs_clsid;
    it->it_flags |= ITEM_FETCHED;
    item_remove(it);
    /* Same class, another length: the same chunk, with the new value. */
    ck_assert_int_eq(apply("k", "second!", 2, 200), APPLY_DONE);
    again = item_peek("k", 1);
    ck_assert_ptr_eq(again, it);
    ck_assert(value_is(again, "second!"));
    ck_assert_uint_eq(again->flags, 2);
    ck_assert_uint_eq(again->version, 200);
    ck_assert_uint_eq(again->it_flags & ITEM_FETCHED, 0);
    ck_assert_uint_ne(again->it_flags & ITEM_LINKED, 0);
    item_remove(again);
    ck_assert_uint_eq(items_curr(), 1);
    ck_assert_uint_eq(items_total(), 2);
    /* Byte counts follow the new length. */
    items_lru_stats(id, &st);
    ck_assert_uint_eq(st.number, 1);
    ck_assert_uint_eq(st.bytes, ITEM_HDR_SIZE + 1 + 9);
    ck_assert_uint_eq(requested_bytes(id), ITEM_HDR_SIZE + 1 + 9);
    /* An older record changes nothing. */
    ck_assert_int_eq(apply("k", "old", 3, 150), APPLY_STALE);
    assert_value("k", "second!");
    assert_no_leak();
}
END_TEST

START_TEST(test_apply_never_rewrites_a_held_item)
{
    enum get_result why;
    struct item *held, *now;

    ck_assert_int_eq(apply("k", "one", 0, 100), APPLY_DONE);
    held = item_get("k", 1, &why);
    ck_assert_ptr_nonnull(held);
    ck_assert_int_eq(apply("k", "two", 0, 200), APPLY_DONE);
    /* The reader still sees what it was given. */
    ck_assert(value_is(held, "one"));
    ck_assert_uint_eq(held->it_flags & ITEM_LINKED, 0);
    now = item_peek("k", 1);
    ck_assert_ptr_ne(now, held);
    item_remove(now);
    assert_value("k", "two");
    item_remove(held);
    assert_no_leak();
}
END_TEST

START_TEST(test_apply_other_class_or_tombstone_relinks)
{
    char big[600];
    struct item *it, *again;
    bool exists;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(apply("k", "small", 0, 100), APPLY_DONE);
    it = item_peek("k", 1);
    item_remove(it);
    ck_assert_int_eq(apply("k", big, 0, 200), APPLY_DONE);
    again = item_peek("k", 1);
    ck_assert_ptr_ne(again, it);
    ck_assert_uint_ne(again->slabs_clsid, it->slabs_clsid);
    item_remove(again);
    assert_value("k", big);
    /* A tombstone is replaced, not revived in place. */
    items_set_tombstone_ttl(60);
    ck_assert(item_delete("k", 1, 0, &exists));
    ck_assert_uint_eq(items_tombstones(), 1);
    ck_assert_int_eq(apply("k", "back", 0, item_next_version() + 1000),
                     APPLY_DONE);
    ck_assert_uint_eq(items_tombstones(), 0);
    assert_value("k", "back");
    items_set_tombstone_ttl(0);
    assert_no_leak();
}
END_TEST

START_TEST(test_apply_copy_links_into_cold)
{
    char big[600];
    struct lru_stats st;
    struct item *it;

    /* A live record is a write: HOT, as a local set.  A copy's record
     * has not been used here: straight to COLD, where the maintainer
     * would move it anyway. */
    ck_assert_int_eq(apply("live", "v", 0, 100), APPLY_DONE);
    ck_assert_int_eq(apply_copy("copied", "v", 0, 100), APPLY_DONE);
    ck_assert_uint_eq(lru_of("live"), LRU_HOT);
    ck_assert_uint_eq(lru_of("copied"), LRU_COLD);
    it = item_peek("live", 4);
    items_lru_stats(it->slabs_clsid, &st);
    item_remove(it);
    ck_assert_uint_eq(st.number_seg[LRU_HOT], 1);
    ck_assert_uint_eq(st.number_seg[LRU_COLD], 1);
    /* Replacing an item (another class, so not in place) too. */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(apply_copy("live", big, 0, 200), APPLY_DONE);
    ck_assert_uint_eq(lru_of("live"), LRU_COLD);
    assert_value("live", big);
    /* A short-lived item still goes to TEMP, as a local write would. */
    settings.temp_lru = true;
    settings.temporary_ttl = 61;
    ck_assert_int_eq(apply_copy("short", "v", current_time + 30, 300),
                     APPLY_DONE);
    ck_assert_uint_eq(lru_of("short"), LRU_TEMP);
    settings.temp_lru = false;
    assert_no_leak();
}
END_TEST

static Suite *items_suite(void)
{
    Suite *s = suite_create("items");
    TCase *store = tcase_create("store");
    TCase *version = tcase_create("versions");
    TCase *expiry = tcase_create("expiry");
    TCase *flush = tcase_create("flush");
    TCase *del = tcase_create("delete");
    TCase *delta = tcase_create("delta");
    TCase *refs = tcase_create("refcount");
    TCase *limits = tcase_create("alloc_limits");
    TCase *evict = tcase_create("eviction");
    TCase *lru = tcase_create("lru");
    TCase *hook = tcase_create("mutation_hook");
    TCase *digest = tcase_create("digest");
    TCase *apply_tc = tcase_create("apply");
    TCase *chunked = tcase_create("chunked");
    TCase *plain[] = {store, version, expiry, flush, del, delta, refs,
                      limits, lru, digest, apply_tc};
    size_t i;

    for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        tcase_add_checked_fixture(plain[i], setup, teardown);
    }
    tcase_add_checked_fixture(evict, setup_tiny, teardown);
    tcase_add_checked_fixture(chunked, setup_chunked, teardown);
    tcase_add_loop_test(chunked, test_chunk_take, 0,
                        sizeof(take_cases) / sizeof(take_cases[0]));
    tcase_add_loop_test(chunked, test_chunked_roundtrip, 0,
                        sizeof(chunked_sizes) / sizeof(chunked_sizes[0]));
    tcase_add_test(chunked, test_chunked_append_prepend);
    tcase_add_test(chunked, test_chunked_size_limit);
    tcase_add_test(chunked, test_chunked_apply_store);
    suite_add_tcase(s, chunked);
    tcase_add_checked_fixture(hook, hook_setup, teardown);

    tcase_add_test(apply_tc, test_apply_rewrites_unheld_item_in_place);
    tcase_add_test(apply_tc, test_apply_never_rewrites_a_held_item);
    tcase_add_test(apply_tc, test_apply_other_class_or_tombstone_relinks);
    tcase_add_test(apply_tc, test_apply_copy_links_into_cold);
    tcase_add_loop_test(store, test_store_modes, 0,
                        sizeof(store_cases) / sizeof(store_cases[0]));
    tcase_add_test(store, test_set_replaces_but_holder_keeps_old);
    tcase_add_test(store, test_append_grows_into_larger_class);
    tcase_add_test(store, test_append_too_large_not_stored);
    tcase_add_test(version, test_versions_strictly_increase);
    tcase_add_test(version, test_observed_version_moves_clock);
    tcase_add_test(version, test_late_writes);
    tcase_add_test(version, test_late_delta);
    tcase_add_test(version, test_stalled_locks);
    tcase_add_test(version, test_node_id_in_low_bits);
    tcase_add_test(version, test_use_cas_false_reports_zero);
    tcase_add_test(expiry, test_get_expired_is_reclaimed);
    tcase_add_test(expiry, test_expired_item_is_missing_for_every_mode);
    tcase_add_test(expiry, test_touch_changes_deadline);
    tcase_add_test(flush, test_flush_now_kills_older_only);
    tcase_add_test(flush, test_flush_in_past_is_now);
    tcase_add_test(flush, test_delayed_flush_waits_for_deadline);
    tcase_add_test(del, test_delete_with_cas);
    tcase_add_test(del, test_delete_unconditional);
    tcase_add_loop_test(delta, test_delta_table, 0,
                        sizeof(delta_cases) / sizeof(delta_cases[0]));
    tcase_add_test(delta, test_delta_missing);
    tcase_add_test(delta, test_delta_with_cas);
    tcase_add_test(delta, test_delta_keeps_flags_and_exptime);
    tcase_add_test(delta, test_delta_does_not_rewrite_referenced_item);
    tcase_add_test(refs, test_refcounts);
    tcase_add_test(refs, test_unstored_item_freed_by_remove);
    tcase_add_test(limits, test_alloc_too_large);
    tcase_add_test(evict, test_evicts_lru_tail);
    tcase_add_test(evict, test_evicts_in_age_order);
    tcase_add_test(evict, test_read_twice_moves_to_warm);
    tcase_add_test(evict, test_flat_lru_evicts_read_tail);
    tcase_add_test(evict, test_eviction_rescues_active_cold_tail);
    tcase_add_test(evict, test_temp_lru_is_never_evicted);
    tcase_add_test(evict, test_reset_lru_stats_keeps_counts);
    tcase_add_test(evict, test_class_of_read_items_still_evicts);
    tcase_add_test(evict, test_referenced_item_not_evicted);
    tcase_add_test(evict, test_no_evict_mode_fails_when_full);
    tcase_add_test(evict, test_no_evict_mode_reclaims_expired_tail);
    tcase_add_test(lru, test_lru_stats_number_and_bytes);
    tcase_add_test(lru, test_cachedump_newest_first);
    tcase_add_test(lru, test_bump_at_most_once_a_minute);
    tcase_add_test(lru, test_flat_lru_reclaims_dead_tail_before_growing);
    tcase_add_test(lru, test_juggle_keeps_hot_within_its_share);
    tcase_add_test(lru, test_juggle_reclaims_dead_items);
    tcase_add_test(lru, test_mode_flat_drains_into_cold);
    tcase_add_test(hook, test_hook_sees_each_mutation);
    tcase_add_test(hook, test_hook_silent_on_failures);
    tcase_add_test(digest, test_digest_same_in_any_slice_size);
    tcase_add_test(digest, test_digest_across_table_doubling);
    tcase_add_test(digest, test_digest_until_leaves_out_dying_items);
    suite_add_tcase(s, store);
    suite_add_tcase(s, version);
    suite_add_tcase(s, expiry);
    suite_add_tcase(s, flush);
    suite_add_tcase(s, del);
    suite_add_tcase(s, delta);
    suite_add_tcase(s, refs);
    suite_add_tcase(s, limits);
    suite_add_tcase(s, evict);
    suite_add_tcase(s, lru);
    suite_add_tcase(s, hook);
    suite_add_tcase(s, digest);
    suite_add_tcase(s, apply_tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(items_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
