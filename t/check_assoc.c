/*
 * check_assoc.c - unit tests for assoc.c: lookups in chained buckets,
 * deletes anywhere in a chain, expansion (on demand and by the expander
 * thread) and the two walks.  Items here are plain mallocs: the table only
 * reads the key and h_next, so no slabs are needed.
 */
#include "memcached.h"
#include "assoc.h"
#include "hash.h"
#include "settings.h"
#include "item_locks.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 16 buckets: NITEMS keys must share buckets. */
#define HASHPOWER 4
#define NITEMS 200

static struct item *items[NITEMS];
static unsigned nitems;

static struct item *make_item(const char *key)
{
    size_t nkey = strlen(key);
    struct item *it = calloc(1, sizeof(*it) + nkey + 2);

    ck_assert_ptr_nonnull(it);
    it->nkey = (uint8_t)nkey;
    it->nbytes = 2;
    memcpy(ITEM_key(it), key, nkey);
    memcpy(ITEM_data(it), "\r\n", 2);
    /* flags holds the item's index, for the walk tests. */
    it->flags = nitems;
    items[nitems++] = it;
    return it;
}

static uint32_t hv_of(const struct item *it)
{
    return hash(ITEM_key(it), it->nkey);
}

/* Insert under the key's stripe lock, as items.c does. */
static struct item *insert(const char *key)
{
    struct item *it = make_item(key);
    uint32_t hv = hv_of(it);

    item_lock(hv);
    assoc_insert(it, hv);
    item_unlock(hv);
    return it;
}

static struct item *find(const char *key)
{
    return assoc_find(key, strlen(key), hash(key, strlen(key)));
}

static void del(const char *key)
{
    assoc_delete(key, strlen(key), hash(key, strlen(key)));
}

static void insert_many(unsigned n)
{
    char key[32];
    unsigned i;

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key:%u", i);
        insert(key);
    }
}

static void assert_all_findable(void)
{
    unsigned i;

    for (i = 0; i < nitems; i++) {
        struct item *it = items[i];
        ck_assert_ptr_eq(assoc_find(ITEM_key(it), it->nkey, hv_of(it)), it);
    }
}

/* Keys "c:<n>" whose hash lands in bucket b of a 2^HASHPOWER table. */
static void colliding_keys(char keys[][16], unsigned n, uint32_t b)
{
    unsigned found = 0;
    unsigned i;

    for (i = 0; found < n; i++) {
        snprintf(keys[found], 16, "c:%u", i);
        if ((hash(keys[found], strlen(keys[found])) &
             ((1u << HASHPOWER) - 1)) == b) {
            found++;
        }
    }
}

static void setup(void)
{
    settings_init();
    util_clock_init();
    ck_assert_int_eq(item_locks_init(HASHPOWER), 0);
    ck_assert_int_eq(assoc_init(HASHPOWER), 0);
    nitems = 0;
}

static void teardown(void)
{
    unsigned i;

    assoc_stop_expander();
    assoc_destroy();
    for (i = 0; i < nitems; i++) {
        free(items[i]);
    }
    nitems = 0;
}

/* --- lookups ------------------------------------------------------------- */

START_TEST(test_insert_find_many_in_few_buckets)
{
    insert_many(NITEMS);
    ck_assert_uint_eq(assoc_count(), NITEMS);
    ck_assert_uint_eq(assoc_hashpower(), HASHPOWER);
    assert_all_findable();
    ck_assert_ptr_null(find("key:200"));
    ck_assert_ptr_null(find("key:"));
    ck_assert_ptr_null(find("nokey"));
}
END_TEST

START_TEST(test_find_compares_whole_key)
{
    /* Prefixes of each other, same bucket or not: length matters. */
    struct item *a = insert("k");
    struct item *b = insert("kk");
    struct item *c = insert("kkk");

    ck_assert_ptr_eq(find("k"), a);
    ck_assert_ptr_eq(find("kk"), b);
    ck_assert_ptr_eq(find("kkk"), c);
    ck_assert_ptr_null(find("kkkk"));
    /* A lookup with the right hash but the wrong key misses. */
    ck_assert_ptr_null(assoc_find("kx", 2, hash("kk", 2)));
}
END_TEST

START_TEST(test_same_bucket_keys_are_distinct)
{
    char keys[4][16];
    struct item *its[4];
    unsigned i;

    colliding_keys(keys, 4, 5);
    for (i = 0; i < 4; i++) {
        its[i] = insert(keys[i]);
    }
    for (i = 0; i < 4; i++) {
        ck_assert_ptr_eq(find(keys[i]), its[i]);
    }
}
END_TEST

/* Delete the chain's head (last inserted), middle, or tail (first). */
START_TEST(test_delete_anywhere_in_chain)
{
    char keys[3][16];
    struct item *its[3];
    unsigned victim = (unsigned)_i;
    unsigned i;

    colliding_keys(keys, 3, 9);
    for (i = 0; i < 3; i++) {
        its[i] = insert(keys[i]);
    }
    insert_many(20);
    del(keys[victim]);
    ck_assert_uint_eq(assoc_count(), 22);
    for (i = 0; i < 3; i++) {
        if (i == victim) {
            ck_assert_ptr_null(find(keys[i]));
        } else {
            ck_assert_ptr_eq(find(keys[i]), its[i]);
        }
    }
    ck_assert_ptr_null(its[victim]->h_next);
    /* It can go back in. */
    item_lock(hv_of(its[victim]));
    assoc_insert(its[victim], hv_of(its[victim]));
    item_unlock(hv_of(its[victim]));
    ck_assert_ptr_eq(find(keys[victim]), its[victim]);
    ck_assert_uint_eq(assoc_count(), 23);
}
END_TEST

/* Replacing an item anywhere in a chain: the new one is found, in the
 * old one's place, the old one is out, the others stay, the count too;
 * also after the table has grown. */
START_TEST(test_replace_anywhere_in_chain)
{
    char keys[3][16];
    struct item *its[3], *now;
    unsigned victim = (unsigned)_i % 3;
    unsigned i;
    uint32_t hv;

    colliding_keys(keys, 3, 9);
    for (i = 0; i < 3; i++) {
        its[i] = insert(keys[i]);
    }
    insert_many(20);
    now = make_item(keys[victim]);
    hv = hv_of(now);
    if (_i >= 3) {
        insert_many(40);        /* past 1.5 per bucket */
        assoc_expand_now();
    }
    item_lock(hv);
    assoc_replace(its[victim], now, hv);
    item_unlock(hv);
    ck_assert_uint_eq(assoc_count(), _i >= 3 ? 63 : 23);
    for (i = 0; i < 3; i++) {
        ck_assert_ptr_eq(find(keys[i]), i == victim ? now : its[i]);
    }
    ck_assert_ptr_null(its[victim]->h_next);
    del(keys[victim]);
    ck_assert_ptr_null(find(keys[victim]));
    ck_assert_uint_eq(assoc_count(), _i >= 3 ? 62 : 22);
}
END_TEST

START_TEST(test_delete_missing_is_noop)
{
    char keys[2][16];

    colliding_keys(keys, 2, 3);
    insert(keys[0]);
    del(keys[1]);
    del("nothing");
    ck_assert_uint_eq(assoc_count(), 1);
    ck_assert_ptr_nonnull(find(keys[0]));
}
END_TEST

START_TEST(test_delete_all_empties_table)
{
    char key[32];
    unsigned i;

    insert_many(NITEMS);
    for (i = 0; i < NITEMS; i += 2) {
        snprintf(key, sizeof(key), "key:%u", i);
        del(key);
    }
    ck_assert_uint_eq(assoc_count(), NITEMS / 2);
    for (i = 0; i < NITEMS; i++) {
        snprintf(key, sizeof(key), "key:%u", i);
        if (i % 2) {
            ck_assert_ptr_eq(find(key), items[i]);
            del(key);
        } else {
            ck_assert_ptr_null(find(key));
        }
    }
    ck_assert_uint_eq(assoc_count(), 0);
}
END_TEST

struct init_case {
    int power;
    int want_rc;
    unsigned want_power;
};

static const struct init_case init_cases[] = {
    {0, 0, 16},                 /* default */
    {-3, 0, 16},
    {1, 0, 1},
    {33, -1, 0},                /* beyond HASHPOWER_MAX */
};

START_TEST(test_init_power)
{
    const struct init_case *c = &init_cases[_i];

    assoc_destroy();
    ck_assert_int_eq(assoc_init(c->power), c->want_rc);
    if (c->want_rc == 0) {
        ck_assert_uint_eq(assoc_hashpower(), c->want_power);
        ck_assert_uint_eq(assoc_count(), 0);
    } else {
        /* Leave a table for teardown. */
        ck_assert_int_eq(assoc_init(HASHPOWER), 0);
    }
}
END_TEST

/* --- expansion ----------------------------------------------------------- */

START_TEST(test_expand_now_keeps_items)
{
    insert_many(NITEMS);
    assoc_expand_now();
    ck_assert_uint_eq(assoc_hashpower(), HASHPOWER + 1);
    ck_assert(!assoc_is_expanding());
    ck_assert_uint_eq(assoc_count(), NITEMS);
    assert_all_findable();
    assoc_expand_now();
    assoc_expand_now();
    ck_assert_uint_eq(assoc_hashpower(), HASHPOWER + 3);
    assert_all_findable();
}
END_TEST

START_TEST(test_insert_delete_after_expand)
{
    insert_many(50);
    assoc_expand_now();
    insert("after");
    ck_assert_ptr_nonnull(find("after"));
    del("key:7");
    ck_assert_ptr_null(find("key:7"));
    ck_assert_uint_eq(assoc_count(), 50);
}
END_TEST

static bool wait_for_power(unsigned power)
{
    uint64_t deadline = util_mono_us() + 5 * 1000 * 1000;

    while (util_mono_us() < deadline) {
        if (assoc_hashpower() == power && !assoc_is_expanding()) {
            return true;
        }
        usleep(1000);
    }
    return false;
}

START_TEST(test_expander_thread_grows_at_one_and_a_half)
{
    unsigned threshold = (1u << HASHPOWER) * 3 / 2;

    ck_assert_int_eq(assoc_start_expander(), 0);
    insert_many(threshold);
    /* At the threshold: no growth yet. */
    usleep(20 * 1000);
    ck_assert_uint_eq(assoc_hashpower(), HASHPOWER);
    insert("one more");
    ck_assert(wait_for_power(HASHPOWER + 1));
    assoc_stop_expander();
    ck_assert_uint_eq(assoc_count(), threshold + 1);
    assert_all_findable();
}
END_TEST

/* --- walks --------------------------------------------------------------- */

struct visits {
    unsigned count[NITEMS];     /* visits per item index */
    unsigned total;             /* fn calls */
    unsigned stop_after;        /* return false after this many; 0 = never */
    bool bad_hv;                /* a visited item was not findable */
    bool unlink;                /* delete each visited item */
};

static bool visit(struct item *it, void *arg)
{
    struct visits *v = arg;
    uint32_t hv = hv_of(it);

    if (assoc_find(ITEM_key(it), it->nkey, hv) != it) {
        v->bad_hv = true;
    }
    v->count[it->flags]++;
    v->total++;
    if (v->unlink) {
        assoc_delete(ITEM_key(it), it->nkey, hv);
    }
    return v->stop_after == 0 || v->total < v->stop_after;
}

static void assert_each_once(const struct visits *v)
{
    unsigned i;

    ck_assert(!v->bad_hv);
    ck_assert_uint_eq(v->total, nitems);
    for (i = 0; i < nitems; i++) {
        ck_assert_uint_eq(v->count[i], 1);
    }
}

START_TEST(test_walk_visits_each_once)
{
    static struct visits v;

    insert_many(NITEMS);
    memset(&v, 0, sizeof(v));
    assoc_walk(visit, &v);
    assert_each_once(&v);
}
END_TEST

START_TEST(test_walk_after_expand_visits_each_once)
{
    static struct visits v;

    insert_many(NITEMS);
    assoc_expand_now();
    memset(&v, 0, sizeof(v));
    assoc_walk(visit, &v);
    assert_each_once(&v);
}
END_TEST

START_TEST(test_walk_stops_when_fn_says_so)
{
    static struct visits v;

    insert_many(NITEMS);
    memset(&v, 0, sizeof(v));
    v.stop_after = 7;
    assoc_walk(visit, &v);
    ck_assert_uint_eq(v.total, 7);
}
END_TEST

START_TEST(test_walk_fn_may_unlink)
{
    static struct visits v;

    insert_many(NITEMS);
    memset(&v, 0, sizeof(v));
    v.unlink = true;
    assoc_walk(visit, &v);
    assert_each_once(&v);
    ck_assert_uint_eq(assoc_count(), 0);
    ck_assert_ptr_null(find("key:0"));
}
END_TEST

START_TEST(test_walk_empty_table)
{
    static struct visits v;

    memset(&v, 0, sizeof(v));
    assoc_walk(visit, &v);
    ck_assert_uint_eq(v.total, 0);
    ck_assert_uint_eq(assoc_walk_buckets(0, 4, visit, &v), 4);
    ck_assert_uint_eq(v.total, 0);
}
END_TEST

/* Slices of 1, 3, 5, 16 and 100 buckets. */
static const uint64_t slice_sizes[] = {1, 3, 5, 16, 100};

START_TEST(test_walk_buckets_slices_cover_table)
{
    static struct visits v;
    uint64_t n = slice_sizes[_i];
    uint64_t size = 1u << HASHPOWER;
    uint64_t start = 0;
    uint64_t calls = 0;

    insert_many(NITEMS);
    memset(&v, 0, sizeof(v));
    do {
        uint64_t next = assoc_walk_buckets(start, n, visit, &v);
        calls++;
        if (next != 0) {
            ck_assert_uint_eq(next, start + n);
        } else {
            ck_assert_uint_ge(start + n, size);
        }
        start = next;
        ck_assert_uint_le(calls, size);
    } while (start != 0);
    ck_assert_uint_eq(calls, (size + n - 1) / n);
    assert_each_once(&v);
}
END_TEST

START_TEST(test_walk_buckets_past_end_returns_zero)
{
    static struct visits v;

    insert_many(10);
    memset(&v, 0, sizeof(v));
    ck_assert_uint_eq(assoc_walk_buckets(1u << HASHPOWER, 4, visit, &v), 0);
    ck_assert_uint_eq(assoc_walk_buckets(1000, 4, visit, &v), 0);
    ck_assert_uint_eq(v.total, 0);
}
END_TEST

/* The table doubles in the middle of a sliced walk (as it may during a
 * full copy): every item is still visited, some of them twice.  The walk
 * has covered 1, 3, 8 or 15 of the 16 buckets when the table grows. */
static const uint64_t grow_after[] = {1, 3, 8, 15};

START_TEST(test_walk_buckets_across_expansion_misses_nothing)
{
    static struct visits v;
    uint64_t stop_at = grow_after[_i];
    uint64_t start = 0;
    unsigned i;

    insert_many(NITEMS);
    memset(&v, 0, sizeof(v));
    while (start < stop_at) {
        start = assoc_walk_buckets(start, 1, visit, &v);
        ck_assert_uint_ne(start, 0);
    }
    assoc_expand_now();
    ck_assert_uint_eq(assoc_hashpower(), HASHPOWER + 1);
    do {
        start = assoc_walk_buckets(start, 3, visit, &v);
    } while (start != 0);
    ck_assert(!v.bad_hv);
    for (i = 0; i < nitems; i++) {
        ck_assert_uint_ge(v.count[i], 1);
        ck_assert_uint_le(v.count[i], 2);
    }
}
END_TEST

static Suite *assoc_suite(void)
{
    Suite *s = suite_create("assoc");
    TCase *lookup = tcase_create("insert_find");
    TCase *del_tc = tcase_create("delete");
    TCase *init = tcase_create("init");
    TCase *expand = tcase_create("expand");
    TCase *walk = tcase_create("walk");
    TCase *buckets = tcase_create("walk_buckets");
    TCase *all[] = {lookup, del_tc, init, expand, walk, buckets};
    size_t i;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        tcase_add_checked_fixture(all[i], setup, teardown);
        suite_add_tcase(s, all[i]);
    }
    tcase_add_test(lookup, test_insert_find_many_in_few_buckets);
    tcase_add_test(lookup, test_find_compares_whole_key);
    tcase_add_test(lookup, test_same_bucket_keys_are_distinct);
    tcase_add_loop_test(del_tc, test_delete_anywhere_in_chain, 0, 3);
    tcase_add_test(del_tc, test_delete_missing_is_noop);
    tcase_add_loop_test(del_tc, test_replace_anywhere_in_chain, 0, 6);
    tcase_add_test(del_tc, test_delete_all_empties_table);
    tcase_add_loop_test(init, test_init_power, 0,
                        sizeof(init_cases) / sizeof(init_cases[0]));
    tcase_add_test(expand, test_expand_now_keeps_items);
    tcase_add_test(expand, test_insert_delete_after_expand);
    tcase_add_test(expand, test_expander_thread_grows_at_one_and_a_half);
    tcase_add_test(walk, test_walk_visits_each_once);
    tcase_add_test(walk, test_walk_after_expand_visits_each_once);
    tcase_add_test(walk, test_walk_stops_when_fn_says_so);
    tcase_add_test(walk, test_walk_fn_may_unlink);
    tcase_add_test(walk, test_walk_empty_table);
    tcase_add_loop_test(buckets, test_walk_buckets_slices_cover_table, 0,
                        sizeof(slice_sizes) / sizeof(slice_sizes[0]));
    tcase_add_test(buckets, test_walk_buckets_past_end_returns_zero);
    tcase_add_loop_test(buckets,
                        test_walk_buckets_across_expansion_misses_nothing, 0,
                        sizeof(grow_after) / sizeof(grow_after[0]));
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(assoc_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
