/*
 * check_util.c - unit tests for util.c: number parsing with memcached's
 * rules, the expiry conversion every protocol relies on, and the
 * formatting and splitting of addresses, hex and URL-encoded keys.
 */
#include "memcached.h"
#include "util.h"

#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

/* What the parsers did with strtoull/strtoll (the reference the
 * hand-written parse_dec must match on every input). */
static bool ref_clean(const char *end)
{
    return *end == '\0' || isspace((unsigned char)*end);
}

static bool ref_strtoull(const char *str, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(str, &end, 10);
    if (errno == ERANGE || end == str || !ref_clean(end)) {
        return false;
    }
    while (isspace((unsigned char)*str)) {
        str++;
    }
    if (*str == '-') {
        return false;
    }
    *out = v;
    return true;
}

static bool ref_strtoll(const char *str, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(str, &end, 10);
    if (errno == ERANGE || end == str || !ref_clean(end)) {
        return false;
    }
    *out = v;
    return true;
}

static void same_as_libc(const char *str)
{
    uint64_t u = 0, ru = 0;
    int64_t l = 0, rl = 0;
    uint32_t u32 = 0;
    int32_t l32 = 0;
    bool ok, rok;

    ok = safe_strtoull(str, &u);
    rok = ref_strtoull(str, &ru);
    ck_assert_msg(ok == rok && (!ok || u == ru), "strtoull \"%s\"", str);
    ok = safe_strtoll(str, &l);
    rok = ref_strtoll(str, &rl);
    ck_assert_msg(ok == rok && (!ok || l == rl), "strtoll \"%s\"", str);
    ok = safe_strtoul(str, &u32);
    rok = ref_strtoull(str, &ru) && ru <= UINT32_MAX;
    ck_assert_msg(ok == rok && (!ok || u32 == ru), "strtoul \"%s\"", str);
    ok = safe_strtol(str, &l32);
    rok = ref_strtoll(str, &rl) && rl <= INT32_MAX && rl >= INT32_MIN;
    ck_assert_msg(ok == rok && (!ok || l32 == rl), "strtol \"%s\"", str);
}

START_TEST(test_parsers_match_libc_on_edges)
{
    static const char *const cases[] = {
        "", " ", "0", "00", "-0", "+0", "+", "-", "+-1", "-+1", "- 1",
        " 1", "\t\n\v\f\r7", "1 ", "1\r\n", "1\t", "1x", "x1", "0x10",
        "1.5", "1e3", "007", "4294967295", "4294967296", "-4294967296",
        "2147483647", "2147483648", "-2147483648", "-2147483649",
        "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616",
        "99999999999999999999", "-99999999999999999999",
        "000000000000000000000000018446744073709551615",
        "184467440737095516150", "+18446744073709551615", "\xb2",
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        same_as_libc(cases[i]);
    }
}
END_TEST

/* Random strings over the characters that matter. */
START_TEST(test_parsers_match_libc_at_random)
{
    static const char alphabet[] = " \t\r\n+-0123456789x9";
    char buf[32];
    unsigned seed = 12345;
    int n;

    for (n = 0; n < 200000; n++) {
        int len = (int)(rand_r(&seed) % 24), i;
        for (i = 0; i < len; i++) {
            buf[i] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
        }
        buf[len] = '\0';
        same_as_libc(buf);
    }
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

/* Every power of ten and its neighbours, against snprintf. */
START_TEST(test_u64toa_matches_printf)
{
    char buf[24], want[24];
    uint64_t p = 1;
    int i, d;

    for (i = 0; i < 20; i++, p *= 10) {
        for (d = -2; d <= 2; d++) {
            uint64_t v = p + (uint64_t)(int64_t)d;
            int n = snprintf(want, sizeof(want), "%llu",
                             (unsigned long long)v);
            ck_assert_int_eq(util_u64toa(v, buf), n);
            ck_assert_str_eq(buf, want);
        }
    }
    for (i = 0; i < 100000; i++) {
        uint64_t v = (uint64_t)i * 2654435761u * (uint64_t)(i % 7 + 1);
        int n = snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
        ck_assert_int_eq(util_u64toa(v, buf), n);
        ck_assert_str_eq(buf, want);
    }
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

START_TEST(test_hex)
{
    const unsigned char in[] = { 0x00, 0x0f, 0xa5, 0xff };
    char out[2 * sizeof(in) + 1];

    memset(out, 'x', sizeof(out));
    util_hex(in, sizeof(in), out);
    ck_assert_str_eq(out, "000fa5ff");
    util_hex(in, 0, out);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_url_encode)
{
    char out[3 * 16 + 1];

    ck_assert_uint_eq(util_url_encode("az-AZ_09.~", 10, out), 10);
    ck_assert_str_eq(out, "az-AZ_09.~");
    ck_assert_uint_eq(util_url_encode("a b/\xff\0", 6, out), 14);
    ck_assert_str_eq(out, "a%20b%2F%FF%00");
}
END_TEST

/* Split spec; host and port as strings, port "-" when none was given. */
static int split(const char *spec, char *host, char *port)
{
    strcpy(port, "-");
    return util_split_host_port(spec, strlen(spec), host, 64, port, 8);
}

START_TEST(test_split_host_port)
{
    char host[64], port[8];

    ck_assert_int_eq(split("example.com:11212", host, port), 0);
    ck_assert_str_eq(host, "example.com");
    ck_assert_str_eq(port, "11212");
    ck_assert_int_eq(split("10.0.0.1", host, port), 0);
    ck_assert_str_eq(host, "10.0.0.1");
    ck_assert_str_eq(port, "-");
    ck_assert_int_eq(split("[::1]:7", host, port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_str_eq(port, "7");
    ck_assert_int_eq(split("[fe80::1]", host, port), 0);
    ck_assert_str_eq(host, "fe80::1");
    ck_assert_str_eq(port, "-");
    ck_assert_int_eq(split("fe80::1:2", host, port), 0);   /* bare v6 */
    ck_assert_str_eq(host, "fe80::1:2");
    ck_assert_str_eq(port, "-");
    ck_assert_int_eq(split("[::1", host, port), -1);
    ck_assert_int_eq(split("h:123456789", host, port), -1);   /* port */
    /* Only the first len bytes count (a -l list). */
    ck_assert_int_eq(util_split_host_port("a:1,b:2", 3, host, 64, port, 8),
                     0);
    ck_assert_str_eq(host, "a");
    ck_assert_str_eq(port, "1");
}
END_TEST

START_TEST(test_addr_name)
{
    struct sockaddr_in a4 = { .sin_family = AF_INET,
                              .sin_port = htons(11211) };
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
                               .sin6_port = htons(5) };
    struct sockaddr other = { .sa_family = AF_UNIX };
    char out[64];

    inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    ck_assert_int_eq(util_addr_name((struct sockaddr *)&a4, out,
                                    sizeof(out)), AF_INET);
    ck_assert_str_eq(out, "127.0.0.1:11211");
    ck_assert_int_eq(util_addr_name((struct sockaddr *)&a6, out,
                                    sizeof(out)), AF_INET6);
    ck_assert_str_eq(out, "[::1]:5");
    ck_assert_int_eq(util_addr_name(&other, out, sizeof(out)), AF_UNIX);
    ck_assert_str_eq(out, "?");
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
    tcase_add_test(parse, test_parsers_match_libc_on_edges);
    tcase_add_test(parse, test_parsers_match_libc_at_random);
    tcase_add_test(time, test_deadline_rules);
    tcase_add_test(time, test_preempt_point_throttles);
    tcase_add_test(fmt, test_u64toa);
    tcase_add_test(fmt, test_u64toa_matches_printf);
    tcase_add_test(fmt, test_hex);
    tcase_add_test(fmt, test_url_encode);
    tcase_add_test(fmt, test_addr_name);
    tcase_add_test(parse, test_split_host_port);
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
