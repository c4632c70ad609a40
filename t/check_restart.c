/*
 * check_restart.c - unit tests for the memory file's format (restart.c):
 * checksums chain, a header is refused for each thing that can be wrong
 * with it, and item records and sections are bounds-checked, so that no
 * truncation or corruption of a file reads past it (run under ASan);
 * and the replication section (repl_persist.c) is refused when it is
 * malformed, of another version, of another pair or stale.
 */
#include "memcached.h"
#include "repl_persist.h"
#include "restart.h"
#include "settings.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISM (1024 * 1024)

static void sealed(struct restart_header *h)
{
    h->header_sum = 0;
    h->header_sum = restart_sum(h, sizeof(*h), 0);
}

static struct restart_header good_header(uint64_t body)
{
    struct restart_header h;

    memset(&h, 0, sizeof(h));
    memcpy(h.magic, RESTART_MAGIC, 8);
    h.format = RESTART_FORMAT;
    h.header_size = sizeof(h);
    h.endian = 0x01020304u;
    h.item_size_max = ISM;
    h.body_bytes = body;
    h.hashpower = 17;
    sealed(&h);
    return h;
}

START_TEST(test_sums_chain)
{
    char buf[100];
    uint64_t whole, part;
    int i;

    for (i = 0; i < 100; i++) {
        buf[i] = (char)(i * 7);
    }
    whole = restart_sum(buf, sizeof(buf), 0);
    part = restart_sum(buf, 64, 0);
    ck_assert_uint_eq(restart_sum(buf + 64, 36, part), whole);
    buf[50] ^= 1;
    ck_assert_uint_ne(restart_sum(buf, sizeof(buf), 0), whole);
}
END_TEST

START_TEST(test_header_checks)
{
    struct restart_header h = good_header(10);
    uint64_t size = sizeof(h) + 10;

    ck_assert_ptr_null(restart_check_header(&h, size, ISM));
    ck_assert_str_eq(restart_check_header(&h, 3, ISM),
                     "shorter than its header");
    ck_assert_str_eq(restart_check_header(&h, size - 1, ISM),
                     "truncated or extended since it was written");
    ck_assert_str_eq(restart_check_header(&h, size, ISM * 2),
                     "written with another item size max (-I)");
    h.format = RESTART_FORMAT + 1;
    sealed(&h);
    ck_assert_str_eq(restart_check_header(&h, size, ISM),
                     "written by another version (format) of paircached");
    h = good_header(10);
    h.endian = 0x04030201u;
    sealed(&h);
    ck_assert_str_eq(restart_check_header(&h, size, ISM),
                     "written on a machine of another byte order");
    h = good_header(10);
    h.items = 5;                /* changed after sealing */
    ck_assert_str_eq(restart_check_header(&h, size, ISM),
                     "header checksum mismatch");
    h = good_header(10);
    h.magic[0] = 'X';
    ck_assert_str_eq(restart_check_header(&h, size, ISM),
                     "not a paircached memory file");
    h = good_header(10);
    h.hashpower = 99;
    sealed(&h);
    ck_assert_str_eq(restart_check_header(&h, size, ISM),
                     "hash power out of range");
}
END_TEST

/* One item record, as restart.c writes it. */
static size_t put_rec(char *p, int kind, const char *key, const char *val)
{
    uint32_t vlen = (uint32_t)strlen(val), flags = 7, exp = 0;
    uint64_t v = 12345;

    memset(p, 0, 24);
    p[0] = (char)kind;
    p[1] = (char)strlen(key);
    memcpy(p + 4, &flags, 4);
    memcpy(p + 8, &exp, 4);
    memcpy(p + 12, &vlen, 4);
    memcpy(p + 16, &v, 8);
    memcpy(p + 24, key, strlen(key));
    memcpy(p + 24 + strlen(key), val, vlen);
    return 24 + strlen(key) + vlen;
}

START_TEST(test_records_parse)
{
    char buf[256];
    const char *p = buf, *why = NULL;
    size_t n = put_rec(buf, 1, "key", "value");
    struct restart_rec r;

    n += put_rec(buf + n, 2, "dead", "");
    ck_assert_int_eq(restart_next_rec(&p, buf + n, ISM, &r, &why), 1);
    ck_assert(!r.tombstone);
    ck_assert_int_eq(r.nkey, 3);
    ck_assert_int_eq(memcmp(r.key, "key", 3), 0);
    ck_assert_uint_eq(r.vlen, 5);
    ck_assert_int_eq(memcmp(r.value, "value", 5), 0);
    ck_assert_uint_eq(r.version, 12345);
    ck_assert_uint_eq(r.flags, 7);
    ck_assert_int_eq(restart_next_rec(&p, buf + n, ISM, &r, &why), 1);
    ck_assert(r.tombstone);
    ck_assert_int_eq(restart_next_rec(&p, buf + n, ISM, &r, &why), 0);
}
END_TEST

START_TEST(test_records_refused)
{
    char buf[256];
    const char *p, *why;
    size_t n = put_rec(buf, 1, "key", "value"), cut;
    struct restart_rec r;
    uint32_t big = ISM;

    /* every truncation of a record is refused, never read past */
    for (cut = 1; cut < n; cut++) {
        char *copy = malloc(cut);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, buf, cut);
        p = copy;
        why = NULL;
        ck_assert_int_eq(restart_next_rec(&p, copy + cut, ISM, &r, &why), -1);
        ck_assert_ptr_nonnull(why);
        free(copy);
    }
    buf[0] = 9;
    p = buf;
    ck_assert_int_eq(restart_next_rec(&p, buf + n, ISM, &r, &why), -1);
    ck_assert_str_eq(why, "an item record of unknown type");
    put_rec(buf, 1, "key", "value");
    buf[1] = 0;
    p = buf;
    ck_assert_int_eq(restart_next_rec(&p, buf + n, ISM, &r, &why), -1);
    ck_assert_str_eq(why, "an item record with a bad key length");
    put_rec(buf, 1, "key", "value");
    memcpy(buf + 12, &big, 4);
    p = buf;
    ck_assert_int_eq(restart_next_rec(&p, buf + n, ISM, &r, &why), -1);
    ck_assert_str_eq(why, "an item record with a bad value length");
    put_rec(buf, 2, "key", "value");
    p = buf;
    ck_assert_int_eq(restart_next_rec(&p, buf + n, ISM, &r, &why), -1);
    ck_assert_str_eq(why, "an item record with a bad value length");
}
END_TEST

static const char *count_cb(uint32_t tag, const char *p, uint64_t n,
                            void *arg)
{
    (void)tag;
    (void)p;
    *(uint64_t *)arg += n;
    return NULL;
}

START_TEST(test_sections_bounded)
{
    char buf[64];
    uint32_t tag = 1;
    uint64_t len = 20, seen = 0, cut;

    memset(buf, 0, sizeof(buf));
    memcpy(buf, &tag, 4);
    memcpy(buf + 4, &len, 8);
    ck_assert_ptr_null(restart_walk_sections(buf, 32, count_cb, &seen));
    ck_assert_uint_eq(seen, 20);
    for (cut = 1; cut < 32; cut++) {
        ck_assert_ptr_nonnull(restart_walk_sections(buf, cut, count_cb,
                                                    &seen));
    }
    len = UINT64_MAX;
    memcpy(buf + 4, &len, 8);
    ck_assert_str_eq(restart_walk_sections(buf, 64, count_cb, &seen),
                     "a section runs past the end");
}
END_TEST

/* Random damage to a valid run of records: each parse either succeeds
 * within the buffer or refuses; ASan checks the "within". */
START_TEST(test_random_damage)
{
    char buf[512];
    size_t n = 0;
    unsigned seed = 1, round;

    n += put_rec(buf + n, 1, "alpha", "one");
    n += put_rec(buf + n, 2, "beta", "");
    n += put_rec(buf + n, 1, "gamma", "three three");
    for (round = 0; round < 20000; round++) {
        char *copy = malloc(n);
        const char *p = copy, *why = NULL;
        struct restart_rec r;
        int k, rc;

        ck_assert_ptr_nonnull(copy);
        memcpy(copy, buf, n);
        for (k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % n] = (char)(seed >> 16);
        }
        while ((rc = restart_next_rec(&p, copy + n, ISM, &r, &why)) == 1) {
            ck_assert(r.value + r.vlen <= copy + n);
        }
        ck_assert(rc == 0 || why != NULL);
        free(copy);
    }
}
END_TEST

/* A replication section as repl_persist.c writes it. */
static size_t repl_section(char *p, uint32_t version, const char *peer,
                           uint32_t port, uint64_t first, uint64_t end)
{
    uint32_t node = 3, nlen = (uint32_t)strlen(peer);
    uint64_t run = 77, zero = 0;
    size_t n;

    memset(p, 0, 80);
    memcpy(p, &version, 4);
    memcpy(p + 4, &node, 4);
    memcpy(p + 8, &run, 8);
    memcpy(p + 16, &zero, 8);
    memcpy(p + 40, &first, 8);
    memcpy(p + 48, &end, 8);
    memcpy(p + 72, &port, 4);
    memcpy(p + 76, &nlen, 4);
    memcpy(p + 80, peer, nlen);
    n = 80 + nlen;
    memset(p + n, 'x', (size_t)(end - first));
    return n + (size_t)(end - first);
}

START_TEST(test_repl_section_checks)
{
    char buf[512];
    size_t n, cut;

    settings_init();
    settings.repl_peer = "10.0.0.2:11212";
    settings.repl_port = 11212;
    settings.repl_tombstone_ttl = 3600;
    n = repl_section(buf, 1, "10.0.0.2:11212", 11212, 100, 150);
    ck_assert_ptr_null(persist_check(buf, n, 10));
    ck_assert_ptr_nonnull(strstr(persist_check(buf, n, 4000), "stale"));
    ck_assert_ptr_nonnull(strstr(persist_check(NULL, 0, 0),
                                 "without a peer"));
    for (cut = 0; cut < n; cut++) {
        ck_assert_ptr_nonnull(persist_check(buf, cut, 0));
    }
    n = repl_section(buf, 2, "10.0.0.2:11212", 11212, 100, 150);
    ck_assert_ptr_nonnull(strstr(persist_check(buf, n, 0),
                                 "another version"));
    n = repl_section(buf, 1, "10.0.0.3:11212", 11212, 100, 150);
    ck_assert_ptr_nonnull(strstr(persist_check(buf, n, 0),
                                 "from another pair"));
    n = repl_section(buf, 1, "10.0.0.2:11212", 11213, 100, 150);
    ck_assert_ptr_nonnull(strstr(persist_check(buf, n, 0),
                                 "from another pair"));
    /* a backlog whose end is before its start */
    n = repl_section(buf, 1, "10.0.0.2:11212", 11212, 100, 150);
    {
        uint64_t end = 50;
        memcpy(buf + 48, &end, 8);
    }
    ck_assert_ptr_nonnull(persist_check(buf, n, 0));
    /* without -x now, the section is not looked at */
    settings.repl_peer = NULL;
    ck_assert_ptr_null(persist_check(buf, 3, 0));
}
END_TEST

static Suite *restart_suite(void)
{
    Suite *s = suite_create("restart");
    TCase *fmt = tcase_create("format");
    TCase *bad = tcase_create("hostile");

    tcase_add_test(fmt, test_sums_chain);
    tcase_add_test(fmt, test_header_checks);
    tcase_add_test(fmt, test_records_parse);
    tcase_add_test(bad, test_records_refused);
    tcase_add_test(bad, test_sections_bounded);
    tcase_add_test(bad, test_random_damage);
    tcase_add_test(bad, test_repl_section_checks);
    suite_add_tcase(s, fmt);
    suite_add_tcase(s, bad);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(restart_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
