/*
 * check_util.c - unit tests for util.c: number parsing with memcached's
 * rules and the expiry conversion every protocol relies on.
 */
#include "memcached.h"
#include "util.h"

#include <check.h>
#include <stdlib.h>

START_TEST(test_strtoull_accepts_digits_and_trailing_space)
{
    uint64_t v;

    ck_assert(safe_strtoull("123", &v));
    ck_assert_uint_eq(v, 123);
    ck_assert(safe_strtoull("18446744073709551615", &v));
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert(safe_strtoull("42\r\n", &v));
    ck_assert_uint_eq(v, 42);
}
END_TEST

START_TEST(test_strtoull_rejects_garbage_sign_and_overflow)
{
    uint64_t v;

    ck_assert(!safe_strtoull("", &v));
    ck_assert(!safe_strtoull("12abc", &v));
    ck_assert(!safe_strtoull("-1", &v));
    ck_assert(!safe_strtoull(" -5", &v));
    ck_assert(!safe_strtoull("18446744073709551616", &v));
}
END_TEST

START_TEST(test_strtol_range)
{
    int32_t v;

    ck_assert(safe_strtol("-1", &v));
    ck_assert_int_eq(v, -1);
    ck_assert(!safe_strtol("2147483648", &v));
    ck_assert(!safe_strtol("1x", &v));
}
END_TEST

START_TEST(test_deadline_rules)
{
    uint32_t now = 1800000000u;
    uint32_t started = now - 100;

    /* 0 never expires. */
    ck_assert_uint_eq(util_deadline(0, now, started), 0);
    /* Up to 30 days: relative. */
    ck_assert_uint_eq(util_deadline(10, now, started), now + 10);
    ck_assert_uint_eq(util_deadline(REALTIME_MAXDELTA, now, started),
                      now + REALTIME_MAXDELTA);
    /* Above: absolute unix time. */
    ck_assert_uint_eq(util_deadline(now + 50, now, started), now + 50);
    /* Negative, or absolute before start: already expired. */
    ck_assert_uint_le(util_deadline(-1, now, started), now);
    ck_assert_uint_le(util_deadline(2678400, now, started), now);
    ck_assert_uint_le(util_deadline(started, now, started), now);
}
END_TEST

START_TEST(test_u64toa)
{
    char buf[24];

    ck_assert_int_eq(util_u64toa(0, buf), 1);
    ck_assert_str_eq(buf, "0");
    ck_assert_int_eq(util_u64toa(UINT64_MAX, buf), 20);
    ck_assert_str_eq(buf, "18446744073709551615");
}
END_TEST

START_TEST(test_preempt_point_throttles)
{
    uint64_t last = 0;
    uint64_t t0 = util_mono_us();
    uint64_t first;

    /* Due at once from 0: yields and records when. */
    util_preempt_point(&last);
    ck_assert_uint_ge(last, t0);
    first = last;
    /* Not again before a millisecond has passed. */
    util_preempt_point(&last);
    if (util_mono_us() - first < 1000) {
        ck_assert_uint_eq(last, first);
    }
    /* Due again once it has. */
    while (util_mono_us() - first < 1000) {
    }
    util_preempt_point(&last);
    ck_assert_uint_gt(last, first);
}
END_TEST

static Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *parse = tcase_create("parse");
    TCase *time = tcase_create("expiry");
    TCase *fmt = tcase_create("format");

    tcase_add_test(parse, test_strtoull_accepts_digits_and_trailing_space);
    tcase_add_test(parse, test_strtoull_rejects_garbage_sign_and_overflow);
    tcase_add_test(parse, test_strtol_range);
    tcase_add_test(time, test_deadline_rules);
    tcase_add_test(time, test_preempt_point_throttles);
    tcase_add_test(fmt, test_u64toa);
    suite_add_tcase(s, parse);
    suite_add_tcase(s, time);
    suite_add_tcase(s, fmt);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(util_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
