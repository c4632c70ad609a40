/*
 * check_slab_automove.c - unit tests for slab_automove's decision
 * (automove_decide): pages back to the global pool from a class with
 * free memory and a quiet window; a page from the oldest class to the
 * one that keeps evicting.
 */
#include "memcached.h"
#include "slab_automove.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 3

static struct automove a;
static struct am_sample s[SLABS_MAX_CLASSES];

static void setup(void)
{
    ck_assert_int_eq(automove_init(&a, WINDOW, 0.8), 0);
    memset(s, 0, sizeof(s));
}

static void teardown(void)
{
    automove_free(&a);
}

static void class(unsigned id, uint64_t pages, uint64_t nfree,
                  uint64_t age)
{
    s[id].total_pages = pages;
    s[id].free_chunks = nfree;
    s[id].chunks_per_page = 10;
    s[id].age = age;
}

START_TEST(test_free_class_gives_page_to_pool)
{
    int src, dst;

    class(1, 5, 26, 100);       /* 2.6 pages free */
    class(2, 5, 25, 100);       /* 2.5: not more than 2.5 */
    memcpy(a.before, s, sizeof(s));     /* as slab_automove_tick starts */
    automove_decide(&a, s, 2, &src, &dst);
    ck_assert_int_eq(src, 1);
    ck_assert_int_eq(dst, 0);
}
END_TEST

START_TEST(test_growing_class_keeps_pages_for_a_window)
{
    int src, dst, i;

    class(1, 5, 0, 100);
    automove_decide(&a, s, 1, &src, &dst);
    class(1, 6, 30, 100);       /* grew a page this sample */
    for (i = 0; i < WINDOW; i++) {
        automove_decide(&a, s, 1, &src, &dst);
        ck_assert_int_eq(dst, -1);
    }
    automove_decide(&a, s, 1, &src, &dst);
    ck_assert_int_eq(src, 1);
    ck_assert_int_eq(dst, 0);
}
END_TEST

START_TEST(test_oldest_gives_to_youngest_evicting)
{
    int src, dst, i;

    class(2, 3, 0, 10);
    class(3, 5, 0, 100);
    for (i = 0; i < WINDOW; i++) {
        s[2].evicted += 50;     /* class 2 evicts every sample */
        automove_decide(&a, s, 3, &src, &dst);
        ck_assert_int_eq(dst, -1);      /* window not full yet */
    }
    s[2].evicted += 50;
    automove_decide(&a, s, 3, &src, &dst);
    ck_assert_int_eq(src, 3);
    ck_assert_int_eq(dst, 2);
}
END_TEST

START_TEST(test_no_move_within_age_ratio)
{
    int src, dst, i;

    class(2, 3, 0, 90);         /* 90 >= 0.8 * 100 */
    class(3, 5, 0, 100);
    for (i = 0; i < 2 * WINDOW; i++) {
        s[2].evicted += 50;
        automove_decide(&a, s, 3, &src, &dst);
        ck_assert_int_eq(dst, -1);
    }
}
END_TEST

int main(void)
{
    Suite *su = suite_create("slab_automove");
    TCase *tc = tcase_create("decide");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_free_class_gives_page_to_pool);
    tcase_add_test(tc, test_growing_class_keeps_pages_for_a_window);
    tcase_add_test(tc, test_oldest_gives_to_youngest_evicting);
    tcase_add_test(tc, test_no_move_within_age_ratio);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
