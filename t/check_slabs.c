/*
 * check_slabs.c - unit tests for slabs.c: class sizes, class lookup, the
 * memory limit, free-list reuse, per-class accounting and page moves.
 * Items, LRUs and eviction are check_items.c's business.
 */
#include "memcached.h"
#include "settings.h"
#include "slabs.h"
#include "util.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN 48
#define CHUNK_MAX (512 * 1024)
#define ITEM_MAX (1024 * 1024)
#define FACTOR 1.25
/* Two of class 1's pages fit (each is 1 MB minus the tail that no 96-byte
 * chunk fills); a third does not. */
#define LIMIT (2 * 1024 * 1024)

/* Pages counted as perslab * size (memcached without slab_reassign). */
static void setup(void)
{
    settings_init();
    util_clock_init();
    slabs_set_accounting(false, 0);
    ck_assert_int_eq(slabs_init(LIMIT, FACTOR, CHUNK_MIN, CHUNK_MAX,
                                ITEM_MAX, false), 0);
}

/* Whole 1 MB pages counted (memcached's default, with slab_reassign). */
static void setup_whole(void)
{
    settings_init();
    util_clock_init();
    slabs_set_accounting(true, 0);
    ck_assert_int_eq(slabs_init(LIMIT, FACTOR, CHUNK_MIN, CHUNK_MAX,
                                ITEM_MAX, false), 0);
}

static void teardown(void)
{
    slabs_destroy();
}

/* Chunks per page and bytes per page of class id, learnt from the stats
 * after one allocation (the class must be empty). */
static unsigned perslab_of(unsigned id)
{
    uint64_t used, nfree, req;
    void *p = slabs_alloc(1, id);

    ck_assert_ptr_nonnull(p);
    slabs_class_stats(id, &used, &nfree, &req);
    slabs_free(p, 1, id);
    return (unsigned)(used + nfree);
}

/* --- class sizes --------------------------------------------------------- */

START_TEST(test_first_class_is_memcached_header_plus_chunk_min)
{
    ck_assert_uint_eq(slabs_chunk_size(1), 48 + CHUNK_MIN);
}
END_TEST

START_TEST(test_sizes_match_memcached_for_n48_f125)
{
    /* memcached -n 48 -f 1.25 prints these chunk sizes for classes 1-8. */
    static const size_t want[] = {96, 120, 152, 192, 240, 304, 384, 480};
    unsigned i;

    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_uint_eq(slabs_chunk_size(i + 1), want[i]);
    }
}
END_TEST

START_TEST(test_sizes_grow_by_factor_and_are_aligned)
{
    unsigned n = slabs_largest_class();
    unsigned i;

    /* Classes 1..n-1 come from the growth loop; n is chunk_max (larger
     * items are chunked: no item_max class). */
    ck_assert_uint_gt(n, 10);
    ck_assert_uint_eq(slabs_count(), n);
    for (i = 1; i + 2 < n; i++) {
        size_t a = slabs_chunk_size(i);
        size_t b = slabs_chunk_size(i + 1);
        ck_assert_uint_eq(a % 8, 0);
        ck_assert_uint_ge(b, (size_t)(a * FACTOR));
        ck_assert_uint_lt(b, (size_t)(a * FACTOR) + 8);
    }
    ck_assert_uint_eq(slabs_chunk_size(n - 1) % 8, 0);
    ck_assert_uint_lt(slabs_chunk_size(n - 1), CHUNK_MAX);
    ck_assert_uint_eq(slabs_chunk_size(n), CHUNK_MAX);
    ck_assert_uint_eq(slabs_chunk_size(0), 0);
    ck_assert_uint_eq(slabs_chunk_size(n + 1), 0);
}
END_TEST

START_TEST(test_no_item_max_class_when_equal_to_chunk_max)
{
    slabs_destroy();
    ck_assert_int_eq(slabs_init(0, 2.0, 48, 4096, 4096, false), 0);
    ck_assert_uint_eq(slabs_chunk_size(slabs_largest_class()), 4096);
    ck_assert_uint_lt(slabs_chunk_size(slabs_largest_class() - 1), 4096);
}
END_TEST

struct init_case {
    double factor;
    size_t chunk_min;
    size_t chunk_max;
    size_t item_max;
};

static const struct init_case bad_inits[] = {
    {1.0, 48, CHUNK_MAX, ITEM_MAX},     /* factor must exceed 1 */
    {0.5, 48, CHUNK_MAX, ITEM_MAX},
    {1.25, 0, CHUNK_MAX, ITEM_MAX},     /* no minimum */
    {1.25, 48, 64, ITEM_MAX},           /* chunk_max below the first class */
    {1.25, 48, CHUNK_MAX, 64},          /* item_max below the first class */
};

START_TEST(test_init_rejects_bad_input)
{
    const struct init_case *c = &bad_inits[_i];

    ck_assert_int_eq(slabs_init(0, c->factor, c->chunk_min, c->chunk_max,
                                c->item_max, false), -1);
}
END_TEST

/* --- class lookup -------------------------------------------------------- */

START_TEST(test_clsid_picks_smallest_fitting_class)
{
    unsigned n = slabs_largest_class();
    unsigned i;

    for (i = 1; i <= n; i++) {
        size_t s = slabs_chunk_size(i);
        ck_assert_uint_eq(slabs_clsid(s), i);
        /* Sizes are strictly increasing, so s - 1 still needs class i. */
        ck_assert_uint_eq(slabs_clsid(s - 1), i);
        if (i < n) {
            ck_assert_uint_eq(slabs_clsid(s + 1), i + 1);
        }
    }
}
END_TEST

struct clsid_case {
    size_t size;
    unsigned want;              /* 0 = none; ~0u = the largest class */
};

static const struct clsid_case clsid_cases[] = {
    {0, 0},
    {1, 1},
    {96, 1},
    {97, 2},
    {120, 2},
    {121, 3},
    {CHUNK_MAX, ~0u},
    {CHUNK_MAX + 1, 0},           /* chunked: items.c chains chunks */
    {ITEM_MAX, 0},
    {(size_t)ITEM_MAX * 64, 0},
};

START_TEST(test_clsid_table)
{
    const struct clsid_case *c = &clsid_cases[_i];
    unsigned want = c->want == ~0u ? slabs_largest_class() : c->want;

    ck_assert_uint_eq(slabs_clsid(c->size), want);
}
END_TEST

/* The smallest class whose chunk holds size, by a plain scan. */
static unsigned scan_clsid(size_t size)
{
    unsigned id;

    if (size == 0) {
        return 0;
    }
    for (id = 1; id <= slabs_largest_class(); id++) {
        if (slabs_chunk_size(id) >= size) {
            return id;
        }
    }
    return 0;
}

static void every_size_matches_scan(void)
{
    size_t size;

    for (size = 0; size <= 70000; size++) {
        ck_assert_msg(slabs_clsid(size) == scan_clsid(size),
                      "size %zu: %u, scan says %u", size, slabs_clsid(size),
                      scan_clsid(size));
    }
    /* The largest class is chunk_max: larger items are chunked. */
    ck_assert_uint_eq(slabs_clsid(CHUNK_MAX), slabs_largest_class());
    ck_assert_uint_eq(slabs_clsid(CHUNK_MAX + 1), 0);
    ck_assert_uint_eq(slabs_clsid(ITEM_MAX), 0);
}

/* The lookup table and the search agree with a scan at every size the
 * table covers and past it, for the -f series... */
START_TEST(test_clsid_every_size)
{
    every_size_matches_scan();
}
END_TEST

/* ...and for -o slab_sizes with sizes that are not multiples of 8
 * (no table) or are (table). */
START_TEST(test_clsid_every_size_slab_sizes)
{
    static const size_t odd[] = {100, 203, 4001, 20001};
    static const size_t even[] = {104, 208, 4000, 20000};

    slabs_destroy();
    ck_assert_int_eq(slabs_set_sizes(odd, 4), 0);
    ck_assert_int_eq(slabs_init(LIMIT, FACTOR, CHUNK_MIN, CHUNK_MAX,
                                ITEM_MAX, false), 0);
    ck_assert_uint_eq(slabs_clsid(101), 2);
    ck_assert_uint_eq(slabs_clsid(203), 2);
    ck_assert_uint_eq(slabs_clsid(204), 3);
    every_size_matches_scan();
    slabs_destroy();
    ck_assert_int_eq(slabs_set_sizes(even, 4), 0);
    ck_assert_int_eq(slabs_init(LIMIT, FACTOR, CHUNK_MIN, CHUNK_MAX,
                                ITEM_MAX, false), 0);
    every_size_matches_scan();
    ck_assert_int_eq(slabs_set_sizes(even, 0), 0);
}
END_TEST

/* --- memory limit -------------------------------------------------------- */

START_TEST(test_limit_stops_growth_after_budget)
{
    unsigned per = perslab_of(1);
    size_t page = (size_t)per * slabs_chunk_size(1);
    unsigned i;

    ck_assert_uint_eq(slabs_mem_limit(), LIMIT);
    /* Two pages fit in the budget. */
    for (i = 0; i < 2 * per; i++) {
        ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    }
    ck_assert_uint_eq(slabs_pages(1), 2);
    ck_assert_uint_eq(slabs_mem_malloced(), 2 * page);
    /* The third would exceed it. */
    ck_assert_ptr_null(slabs_alloc(96, 1));
    ck_assert_uint_eq(slabs_pages(1), 2);
    ck_assert_uint_eq(slabs_mem_malloced(), 2 * page);
}
END_TEST

START_TEST(test_first_page_of_a_class_granted_over_limit)
{
    unsigned per = perslab_of(1);
    unsigned id = 2;
    unsigned per2;
    unsigned i;

    for (i = 0; i < 2 * per; i++) {
        ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    }
    ck_assert_ptr_null(slabs_alloc(96, 1));
    /* The budget is spent, yet class 2 gets its first page... */
    per2 = perslab_of(id);
    ck_assert_uint_gt(slabs_mem_malloced(), LIMIT);
    for (i = 0; i < per2; i++) {
        ck_assert_ptr_nonnull(slabs_alloc(100, id));
    }
    /* ...and only that one. */
    ck_assert_ptr_null(slabs_alloc(100, id));
    ck_assert_uint_eq(slabs_pages(id), 1);
    /* So does the largest class. */
    per2 = perslab_of(slabs_largest_class());
    for (i = 0; i < per2; i++) {
        ck_assert_ptr_nonnull(slabs_alloc(CHUNK_MAX, slabs_largest_class()));
    }
    ck_assert_ptr_null(slabs_alloc(CHUNK_MAX, slabs_largest_class()));
}
END_TEST

START_TEST(test_raising_limit_allows_growth)
{
    unsigned per = perslab_of(1);
    unsigned i;

    for (i = 0; i < 2 * per; i++) {
        ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    }
    ck_assert_ptr_null(slabs_alloc(96, 1));
    slabs_set_mem_limit(4 * 1024 * 1024);
    ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    ck_assert_uint_eq(slabs_pages(1), 3);
}
END_TEST

START_TEST(test_zero_limit_is_unlimited)
{
    unsigned per;
    unsigned i;

    slabs_destroy();
    ck_assert_int_eq(slabs_init(0, FACTOR, CHUNK_MIN, CHUNK_MAX, ITEM_MAX,
                                false), 0);
    per = perslab_of(1);
    for (i = 0; i < 3 * per + 1; i++) {
        ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    }
    ck_assert_uint_eq(slabs_pages(1), 4);
}
END_TEST

START_TEST(test_alloc_bad_class_fails)
{
    ck_assert_ptr_null(slabs_alloc(10, 0));
    ck_assert_ptr_null(slabs_alloc(10, slabs_largest_class() + 1));
    ck_assert_uint_eq(slabs_mem_malloced(), 0);
    ck_assert_uint_eq(slabs_pages(0), 0);
}
END_TEST

/* --- free lists ---------------------------------------------------------- */

START_TEST(test_free_then_alloc_reuses_chunk)
{
    void *a = slabs_alloc(96, 1);
    void *b = slabs_alloc(96, 1);
    void *c;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    slabs_free(a, 96, 1);
    c = slabs_alloc(96, 1);
    ck_assert_ptr_eq(c, a);
    ck_assert_uint_eq(slabs_pages(1), 1);
}
END_TEST

START_TEST(test_chunks_handed_out_in_address_order)
{
    size_t size = slabs_chunk_size(3);
    char *prev = slabs_alloc(size, 3);
    int i;

    ck_assert_ptr_nonnull(prev);
    for (i = 0; i < 20; i++) {
        char *p = slabs_alloc(size, 3);
        ck_assert_ptr_eq(p, prev + size);
        prev = p;
    }
}
END_TEST

START_TEST(test_chunk_flags_track_state)
{
    struct item *it = slabs_alloc(96, 1);

    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(it->slabs_clsid, 1);
    ck_assert_uint_eq(it->it_flags & ITEM_SLABBED, 0);
    slabs_free(it, 96, 1);
    ck_assert_uint_eq(it->slabs_clsid, 0);
    ck_assert_uint_ne(it->it_flags & ITEM_SLABBED, 0);
}
END_TEST

/* --- accounting ---------------------------------------------------------- */

START_TEST(test_class_stats_count_requested_bytes)
{
    uint64_t used, nfree, req;
    unsigned per = perslab_of(2);
    void *a = slabs_alloc(100, 2);
    void *b = slabs_alloc(110, 2);

    slabs_class_stats(2, &used, &nfree, &req);
    ck_assert_uint_eq(used, 2);
    ck_assert_uint_eq(nfree, per - 2);
    ck_assert_uint_eq(req, 210);
    slabs_free(a, 100, 2);
    slabs_class_stats(2, &used, &nfree, &req);
    ck_assert_uint_eq(used, 1);
    ck_assert_uint_eq(nfree, per - 1);
    ck_assert_uint_eq(req, 110);
    slabs_free(b, 110, 2);
    slabs_class_stats(2, &used, &nfree, &req);
    ck_assert_uint_eq(used, 0);
    ck_assert_uint_eq(req, 0);
    /* Other classes are untouched. */
    slabs_class_stats(1, &used, &nfree, &req);
    ck_assert_uint_eq(used + nfree + req, 0);
}
END_TEST

START_TEST(test_pages_come_from_2mb_aligned_blocks)
{
    char *a = slabs_alloc(96, 1);
    char *b = slabs_alloc(100, 2);
    size_t block = 2 * 1024 * 1024;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    /* The first page starts a block; the next class's page follows it in
     * the same block when two fit. */
    ck_assert_uint_eq((uintptr_t)a % block, 0);
    if (2 * slabs_chunk_size(slabs_largest_class()) <= block) {
        ck_assert_uint_eq((uintptr_t)b / block, (uintptr_t)a / block);
    }
}
END_TEST

START_TEST(test_resize_moves_requested_bytes)
{
    uint64_t used, nfree, req;
    void *a = slabs_alloc(100, 2);

    ck_assert_ptr_nonnull(a);
    slabs_resize(2, 100, 120);
    slabs_class_stats(2, &used, &nfree, &req);
    ck_assert_uint_eq(req, 120);
    slabs_free(a, 120, 2);
    slabs_class_stats(2, &used, &nfree, &req);
    ck_assert_uint_eq(req, 0);
}
END_TEST

START_TEST(test_stats_text_lists_only_classes_with_pages)
{
    struct strbuf sb;

    ck_assert_ptr_nonnull(slabs_alloc(100, 2));
    sb_init(&sb);
    slabs_stats(&sb, NULL);
    ck_assert_ptr_nonnull(sb.buf);
    ck_assert_ptr_nonnull(strstr(sb.buf, "STAT 2:chunk_size 120\r\n"));
    ck_assert_ptr_nonnull(strstr(sb.buf, "STAT 2:used_chunks 1\r\n"));
    ck_assert_ptr_nonnull(strstr(sb.buf, "STAT 2:total_pages 1\r\n"));
    ck_assert_ptr_null(strstr(sb.buf, "STAT 1:"));
    ck_assert_ptr_nonnull(strstr(sb.buf, "STAT active_slabs 1\r\n"));
    sb_free(&sb);
}
END_TEST

/* --- page reassignment --------------------------------------------------- */

START_TEST(test_reassign_refusals)
{
    unsigned src, count;
    char *page;
    size_t chunk;

    ck_assert_int_eq(slabs_reassign_begin(1, 1, &src, &page, &chunk, &count),
                     REASSIGN_SAME);
    ck_assert_int_eq(slabs_reassign_begin(0, 2, &src, &page, &chunk, &count),
                     REASSIGN_BADCLASS);
    ck_assert_int_eq(slabs_reassign_begin(1, slabs_largest_class() + 1, &src,
                                          &page, &chunk, &count),
                     REASSIGN_BADCLASS);
    /* One page is never given away. */
    ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    ck_assert_int_eq(slabs_reassign_begin(1, 2, &src, &page, &chunk, &count),
                     REASSIGN_NOSPARE);
    ck_assert_int_eq(slabs_reassign_begin(-1, 2, &src, &page, &chunk,
                                          &count), REASSIGN_NOSPARE);
}
END_TEST

START_TEST(test_reassign_moves_first_page)
{
    unsigned per = perslab_of(1);
    void **chunks = calloc(per + 1, sizeof(*chunks));
    uint64_t used, nfree, req;
    unsigned src, count, i;
    char *page;
    size_t chunk;
    size_t before;

    ck_assert_ptr_nonnull(chunks);
    for (i = 0; i <= per; i++) {
        chunks[i] = slabs_alloc(96, 1);
        ck_assert_ptr_nonnull(chunks[i]);
    }
    ck_assert_uint_eq(slabs_pages(1), 2);
    ck_assert_int_eq(slabs_reassign_begin(-1, 2, &src, &page, &chunk,
                                          &count), REASSIGN_OK);
    ck_assert_uint_eq(src, 1);
    ck_assert_ptr_eq(page, chunks[0]);
    ck_assert_uint_eq(chunk, 96);
    ck_assert_uint_eq(count, per);
    /* Chunks of the moving page freed now stay off the free list. */
    slabs_class_stats(1, &used, &nfree, &req);
    before = nfree;
    for (i = 0; i < per; i++) {
        slabs_free(chunks[i], 96, 1);
    }
    slabs_class_stats(1, &used, &nfree, &req);
    ck_assert_uint_eq(nfree, before);
    ck_assert(slabs_reassign_finish(1, 2));
    ck_assert_uint_eq(slabs_pages(1), 1);
    ck_assert_uint_eq(slabs_pages(2), 1);
    /* Class 2's new page is the memory class 1 gave up. */
    {
        char *c2 = slabs_alloc(100, 2);
        ck_assert(c2 >= page && c2 < page + per * chunk);
        slabs_free(c2, 100, 2);
    }
    /* The chunk from the second page is still good. */
    ck_assert_uint_eq(((struct item *)chunks[per])->slabs_clsid, 1);
    for (i = 0; i < 5; i++) {
        ck_assert_ptr_nonnull(slabs_alloc(100, 2));
    }
    free(chunks);
}
END_TEST

/* --- whole pages and the global pool ------------------------------------- */

/* Fill class id's current pages; returns how many chunks were taken. */
static unsigned fill(unsigned id, size_t size)
{
    uint64_t used, nfree, req;
    unsigned n = 0;

    do {
        ck_assert_ptr_nonnull(slabs_alloc(size, id));
        n++;
        slabs_class_stats(id, &used, &nfree, &req);
    } while (nfree > 0);
    return n;
}

START_TEST(test_whole_pages_are_charged)
{
    ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    ck_assert_uint_eq(slabs_mem_malloced(), 1024 * 1024);
    fill(1, 96);
    ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    ck_assert_uint_eq(slabs_mem_malloced(), 2 * 1024 * 1024);
    /* The budget (2 MB) is spent. */
    fill(1, 96);
    ck_assert_ptr_null(slabs_alloc(96, 1));
}
END_TEST

START_TEST(test_page_to_pool_and_back)
{
    unsigned src, count, i, per;
    char *page;
    size_t chunk;
    void **c;

    per = slabs_perslab(1);
    c = calloc(2 * per, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    for (i = 0; i < 2 * per; i++) {
        c[i] = slabs_alloc(96, 1);
        ck_assert_ptr_nonnull(c[i]);
    }
    ck_assert_int_eq(slabs_reassign_begin(1, 0, &src, &page, &chunk,
                                          &count), REASSIGN_OK);
    for (i = 0; i < per; i++) {
        slabs_free(c[i], 96, 1);
    }
    ck_assert(slabs_reassign_finish(1, 0));
    ck_assert_uint_eq(slabs_pages(1), 1);
    ck_assert_uint_eq(slabs_pool_pages(), 1);
    /* Still counted: it was allocated once. */
    ck_assert_uint_eq(slabs_mem_malloced(), 2 * 1024 * 1024);
    /* Class 5's first page is the pooled one: no new memory... */
    fill(5, 200);
    ck_assert_uint_eq(slabs_pages(5), 1);
    ck_assert_uint_eq(slabs_pool_pages(), 0);
    ck_assert_uint_eq(slabs_mem_malloced(), 2 * 1024 * 1024);
    /* ...and with the pool empty and the budget spent, no second. */
    ck_assert_ptr_null(slabs_alloc(200, 5));
    free(c);
}
END_TEST

/* Two pages of class 1 pooled one after the other under a limit lowered
 * to 1 MB: the first goes back at once (total_malloced 2 -> 1 MB), the
 * second stays (1 MB is within the limit); raising the limit lets class
 * 5 grow into the released slot. */
START_TEST(test_pool_released_over_lowered_limit)
{
    unsigned per = slabs_perslab(1);
    unsigned src, count, i;
    char *page;
    size_t chunk;
    void **c = calloc(2 * per, sizeof(*c));

    ck_assert_ptr_nonnull(c);
    for (i = 0; i < 2 * per; i++) {
        c[i] = slabs_alloc(96, 1);
        ck_assert_ptr_nonnull(c[i]);
    }
    slabs_set_mem_limit(1024 * 1024);
    /* Nothing pooled yet: nothing to give back. */
    ck_assert_uint_eq(slabs_mem_malloced(), 2 * 1024 * 1024);
    for (i = 0; i < 2 * per; i++) {
        slabs_free(c[i], 96, 1);
    }
    ck_assert_int_eq(slabs_reassign_begin(1, 0, &src, &page, &chunk,
                                          &count), REASSIGN_OK);
    ck_assert(slabs_reassign_finish(1, 0));
    ck_assert_uint_eq(slabs_pool_pages(), 0);
    ck_assert_uint_eq(slabs_mem_malloced(), 1024 * 1024);
    /* A class's last page cannot move; its chunks are all free. */
    ck_assert_int_eq(slabs_reassign_begin(1, 0, &src, &page, &chunk,
                                          &count), REASSIGN_NOSPARE);
    /* Back to 2 MB: class 5 gets a page again (the released slot). */
    slabs_set_mem_limit(LIMIT);
    fill(5, 200);
    ck_assert_uint_eq(slabs_pages(5), 1);
    ck_assert_uint_eq(slabs_mem_malloced(), 2 * 1024 * 1024);
    ck_assert_ptr_null(slabs_alloc(200, 5));
    free(c);
}
END_TEST

/* Pages pooled while within the limit go back when it is lowered. */
START_TEST(test_lowering_limit_releases_pool)
{
    unsigned per = slabs_perslab(1);
    unsigned src, count, i;
    char *page;
    size_t chunk;
    void **c = calloc(2 * per, sizeof(*c));

    ck_assert_ptr_nonnull(c);
    for (i = 0; i < 2 * per; i++) {
        c[i] = slabs_alloc(96, 1);
        ck_assert_ptr_nonnull(c[i]);
    }
    for (i = 0; i < per; i++) {
        slabs_free(c[i], 96, 1);
    }
    ck_assert_int_eq(slabs_reassign_begin(1, 0, &src, &page, &chunk,
                                          &count), REASSIGN_OK);
    ck_assert(slabs_reassign_finish(1, 0));
    ck_assert_uint_eq(slabs_pool_pages(), 1);
    ck_assert_uint_eq(slabs_mem_malloced(), 2 * 1024 * 1024);
    slabs_set_mem_limit(1024 * 1024);
    ck_assert_uint_eq(slabs_pool_pages(), 0);
    ck_assert_uint_eq(slabs_mem_malloced(), 1024 * 1024);
    free(c);
}
END_TEST

/* Per-page charges (no slab_reassign): pooled pages are never released,
 * as memcached releases only whole 1 MB pages. */
START_TEST(test_partial_charges_never_release)
{
    unsigned per = perslab_of(1);
    unsigned src, count, i;
    char *page;
    size_t chunk;
    size_t had;
    void **c = calloc(2 * per, sizeof(*c));

    ck_assert_ptr_nonnull(c);
    for (i = 0; i < 2 * per; i++) {
        c[i] = slabs_alloc(96, 1);
        ck_assert_ptr_nonnull(c[i]);
    }
    had = slabs_mem_malloced();
    for (i = 0; i < per; i++) {
        slabs_free(c[i], 96, 1);
    }
    ck_assert_int_eq(slabs_reassign_begin(1, 0, &src, &page, &chunk,
                                          &count), REASSIGN_OK);
    ck_assert(slabs_reassign_finish(1, 0));
    slabs_set_mem_limit(512 * 1024);
    ck_assert_uint_eq(slabs_pool_pages(), 1);
    ck_assert_uint_eq(slabs_mem_malloced(), had);
    free(c);
}
END_TEST

START_TEST(test_alloc_free_never_grows)
{
    ck_assert_ptr_null(slabs_alloc_free(96, 1));
    ck_assert_uint_eq(slabs_pages(1), 0);
    ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    ck_assert_ptr_nonnull(slabs_alloc_free(96, 1));
    ck_assert_uint_eq(slabs_pages(1), 1);
}
END_TEST

START_TEST(test_initial_malloced_counts)
{
    slabs_destroy();
    slabs_set_accounting(true, (size_t)3 * 1024 * 1024);
    ck_assert_int_eq(slabs_init(4 * 1024 * 1024, FACTOR, CHUNK_MIN,
                                CHUNK_MAX, ITEM_MAX, false), 0);
    ck_assert_uint_eq(slabs_mem_malloced(), 3 * 1024 * 1024);
    ck_assert_ptr_nonnull(slabs_alloc(96, 1));
    fill(1, 96);
    /* 3 MB "used" + 1 page = the 4 MB limit: no second page. */
    ck_assert_ptr_null(slabs_alloc(96, 1));
}
END_TEST

START_TEST(test_store_may_take_moving_chunk_back)
{
    unsigned per = slabs_perslab(1);
    unsigned src, count, i;
    uint64_t used, nfree, req;
    void **c = calloc(2 * per, sizeof(*c));
    char *page;
    size_t chunk;
    struct item *again;

    ck_assert_ptr_nonnull(c);
    for (i = 0; i < 2 * per; i++) {
        c[i] = slabs_alloc(96, 1);
        ck_assert_ptr_nonnull(c[i]);
    }
    ck_assert_int_eq(slabs_reassign_begin(1, 0, &src, &page, &chunk,
                                          &count), REASSIGN_OK);
    slabs_free(c[0], 96, 1);
    /* The budget is spent and the class full: a store gets the chunk
     * just freed in the moving page, as memcached's would... */
    again = slabs_alloc(96, 1);
    ck_assert_ptr_eq(again, c[0]);
    for (i = 1; i < per; i++) {
        slabs_free(c[i], 96, 1);
    }
    /* ...so the page is not empty yet. */
    ck_assert(!slabs_reassign_finish(1, 0));
    /* Giving up returns the page's free chunks to the class. */
    slabs_reassign_cancel(1);
    slabs_class_stats(1, &used, &nfree, &req);
    ck_assert_uint_eq(nfree, per - 1);
    ck_assert_uint_eq(slabs_pages(1), 2);
    ck_assert_uint_eq(slabs_pool_pages(), 0);
    free(c);
}
END_TEST

static Suite *slabs_suite(void)
{
    Suite *s = suite_create("slabs");
    TCase *sizes = tcase_create("class_sizes");
    TCase *init = tcase_create("init_input");
    TCase *lookup = tcase_create("clsid");
    TCase *limit = tcase_create("memory_limit");
    TCase *reuse = tcase_create("free_list");
    TCase *acct = tcase_create("accounting");
    TCase *move = tcase_create("reassign");
    TCase *whole = tcase_create("whole_pages");
    TCase *all[] = {sizes, init, lookup, limit, reuse, acct, move};

    size_t i;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        tcase_add_checked_fixture(all[i], setup, teardown);
        suite_add_tcase(s, all[i]);
    }
    tcase_add_checked_fixture(whole, setup_whole, teardown);
    suite_add_tcase(s, whole);
    tcase_add_test(whole, test_whole_pages_are_charged);
    tcase_add_test(whole, test_page_to_pool_and_back);
    tcase_add_test(whole, test_alloc_free_never_grows);
    tcase_add_test(whole, test_store_may_take_moving_chunk_back);
    tcase_add_test(whole, test_initial_malloced_counts);
    tcase_add_test(whole, test_pool_released_over_lowered_limit);
    tcase_add_test(whole, test_lowering_limit_releases_pool);
    tcase_add_test(move, test_partial_charges_never_release);
    tcase_add_test(sizes, test_first_class_is_memcached_header_plus_chunk_min);
    tcase_add_test(sizes, test_sizes_match_memcached_for_n48_f125);
    tcase_add_test(sizes, test_sizes_grow_by_factor_and_are_aligned);
    tcase_add_test(sizes, test_no_item_max_class_when_equal_to_chunk_max);
    tcase_add_loop_test(init, test_init_rejects_bad_input, 0,
                        sizeof(bad_inits) / sizeof(bad_inits[0]));
    tcase_add_test(lookup, test_clsid_picks_smallest_fitting_class);
    tcase_add_loop_test(lookup, test_clsid_table, 0,
                        sizeof(clsid_cases) / sizeof(clsid_cases[0]));
    tcase_add_test(lookup, test_clsid_every_size);
    tcase_add_test(lookup, test_clsid_every_size_slab_sizes);
    tcase_add_test(limit, test_limit_stops_growth_after_budget);
    tcase_add_test(limit, test_first_page_of_a_class_granted_over_limit);
    tcase_add_test(limit, test_raising_limit_allows_growth);
    tcase_add_test(limit, test_zero_limit_is_unlimited);
    tcase_add_test(limit, test_alloc_bad_class_fails);
    tcase_add_test(reuse, test_free_then_alloc_reuses_chunk);
    tcase_add_test(reuse, test_chunks_handed_out_in_address_order);
    tcase_add_test(reuse, test_chunk_flags_track_state);
    tcase_add_test(acct, test_class_stats_count_requested_bytes);
    tcase_add_test(acct, test_resize_moves_requested_bytes);
    tcase_add_test(reuse, test_pages_come_from_2mb_aligned_blocks);
    tcase_add_test(acct, test_stats_text_lists_only_classes_with_pages);
    tcase_add_test(move, test_reassign_refusals);
    tcase_add_test(move, test_reassign_moves_first_page);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(slabs_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
