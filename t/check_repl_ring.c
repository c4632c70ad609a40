/*
 * check_repl_ring.c - unit tests for repl_ring.c, the backlog ring: the
 * offsets it reports (start, end, what it still has), reads that span
 * the wrap, overrun (the oldest bytes go, reads of them fail), appends
 * larger than the ring, and a ring of size 0.  Tiny rings, no server.
 */
#include "repl_ring.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct repl_ring r;

static void teardown(void)
{
    ring_free(&r);
}

/* Put the string s. */
static void put(const char *s)
{
    ring_put(&r, s, strlen(s));
}

/* Read [from, from + max) back as a string: "" when the ring refuses. */
static char *read_back(uint64_t from, size_t max)
{
    static char out[256];
    struct rbuf b = { 0 };
    size_t n = ring_copy(&r, from, max, &b);

    ck_assert_uint_le(n, sizeof(out) - 1);
    ck_assert_uint_eq(n, b.len);
    if (n > 0) {
        memcpy(out, b.data, n);
    }
    out[n] = '\0';
    rbuf_free(&b);
    return out;
}

START_TEST(test_offsets_before_wrap)
{
    ck_assert_int_eq(ring_init(&r, 8), 0);
    ck_assert_uint_eq(r.end, 0);
    ck_assert_uint_eq(ring_start(&r), 0);
    ck_assert(ring_has(&r, 0));         /* empty: the end itself */
    ck_assert(!ring_has(&r, 1));        /* past the end */
    put("abc");
    ck_assert_uint_eq(r.end, 3);
    ck_assert_uint_eq(ring_start(&r), 0);
    ck_assert(ring_has(&r, 0) && ring_has(&r, 3) && !ring_has(&r, 4));
    ck_assert_str_eq(read_back(0, 100), "abc");
    ck_assert_str_eq(read_back(1, 100), "bc");
    ck_assert_str_eq(read_back(0, 2), "ab");
    ck_assert_str_eq(read_back(3, 100), "");    /* at the end: nothing */
}
END_TEST

START_TEST(test_wrap)
{
    size_t len;
    const char *p;

    ck_assert_int_eq(ring_init(&r, 8), 0);
    put("012345");
    put("6789");                        /* wraps: "89" at the front */
    ck_assert_uint_eq(r.end, 10);
    ck_assert_uint_eq(ring_start(&r), 2);
    ck_assert_int_eq(memcmp(r.buf, "89234567", 8), 0);
    /* A read across the wrap comes back whole and in order. */
    ck_assert_str_eq(read_back(2, 100), "23456789");
    ck_assert_str_eq(read_back(6, 3), "678");
    ck_assert_str_eq(read_back(8, 100), "89");
    /* A span stops at the wrap; the next one starts at the front. */
    p = ring_span(&r, 5, r.end, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(p, "567", 3), 0);
    p = ring_span(&r, 8, r.end, &len);
    ck_assert_uint_eq(len, 2);
    ck_assert_int_eq(memcmp(p, "89", 2), 0);
    /* ... and stops at `to` before the wrap. */
    p = ring_span(&r, 3, 5, &len);
    ck_assert_uint_eq(len, 2);
    ck_assert_int_eq(memcmp(p, "34", 2), 0);
}
END_TEST

START_TEST(test_overrun)
{
    ck_assert_int_eq(ring_init(&r, 8), 0);
    put("abcdefgh");
    ck_assert(ring_has(&r, 0));         /* exactly full: all still there */
    put("i");
    ck_assert(!ring_has(&r, 0));        /* the oldest byte went */
    ck_assert(ring_has(&r, 1));
    ck_assert_str_eq(read_back(0, 100), "");    /* overwritten: refused */
    ck_assert_str_eq(read_back(1, 100), "bcdefghi");
    /* Many turns later the offsets still count every byte put. */
    for (int i = 0; i < 1000; i++) {
        put("xyz");
    }
    ck_assert_uint_eq(r.end, 9 + 3000);
    ck_assert_uint_eq(ring_start(&r), r.end - 8);
    ck_assert(!ring_has(&r, ring_start(&r) - 1));
    ck_assert_str_eq(read_back(r.end - 3, 100), "xyz");
    ck_assert_str_eq(read_back(ring_start(&r), 100), "yzxyzxyz");
}
END_TEST

START_TEST(test_put_larger_than_ring)
{
    ck_assert_int_eq(ring_init(&r, 4), 0);
    put("0123456789");                  /* only the last 4 bytes stay */
    ck_assert_uint_eq(r.end, 10);
    ck_assert_uint_eq(ring_start(&r), 6);
    ck_assert_str_eq(read_back(6, 100), "6789");
    ck_assert(!ring_has(&r, 5));
}
END_TEST

START_TEST(test_no_backlog)
{
    ck_assert_int_eq(ring_init(&r, 0), 0);
    put("abc");                         /* nothing kept, nothing counted */
    ck_assert_uint_eq(r.end, 0);
    ck_assert(!ring_has(&r, 0));
    ck_assert_str_eq(read_back(0, 100), "");
}
END_TEST

static Suite *ring_suite(void)
{
    Suite *s = suite_create("repl_ring");
    TCase *off = tcase_create("offsets");
    TCase *wrap = tcase_create("wrap and overrun");

    tcase_add_checked_fixture(off, NULL, teardown);
    tcase_add_checked_fixture(wrap, NULL, teardown);
    tcase_add_test(off, test_offsets_before_wrap);
    tcase_add_test(off, test_no_backlog);
    tcase_add_test(wrap, test_wrap);
    tcase_add_test(wrap, test_overrun);
    tcase_add_test(wrap, test_put_larger_than_ring);
    suite_add_tcase(s, off);
    suite_add_tcase(s, wrap);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ring_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
