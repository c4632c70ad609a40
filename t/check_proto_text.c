/*
 * check_proto_text.c - unit tests for proto_text.c: the tokenizer, and
 * whole request lines run through proto_text_process() on a fake
 * connection (no socket, no event base) whose queued reply is compared
 * byte for byte with what memcached 1.6 sends.
 */
#include "memcached.h"
#include "assoc.h"
#include "conn.h"
#include "conn_reply.h"
#include "items.h"
#include "proto_text.h"
#include "settings.h"
#include "slabs.h"
#include "stats.h"
#include "item_locks.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- tokenizer ----------------------------------------------------------- */

struct tok_case {
    const char *line;
    int max;
    int want;                   /* tokens returned */
    const char *joined;         /* the tokens joined with '|' */
    const char *rest;           /* *rest, NULL if none */
};

static const struct tok_case tok_cases[] = {
    {"get a b", 24, 3, "get|a|b", NULL},
    {"  get   a  ", 24, 2, "get|a", NULL},
    {"", 24, 0, "", NULL},
    {"     ", 24, 0, "", NULL},
    {"a", 24, 1, "a", NULL},
    {"a b c d e", 3, 3, "a|b|c", "d e"},
    {"a b c", 3, 3, "a|b|c", NULL},
    {"a b c   ", 3, 3, "a|b|c", NULL},
    {"a b c   d", 3, 3, "a|b|c", "d"},
    /* Only spaces separate, as in memcached. */
    {"a\tb c", 24, 2, "a\tb|c", NULL},
    {"a\r b", 24, 2, "a\r|b", NULL},
    {"x y", 0, 0, "", "x y"},
};

START_TEST(test_tokenize_table)
{
    const struct tok_case *c = &tok_cases[_i];
    struct token t[24];
    char line[64];
    char joined[64] = "";
    char *rest = (char *)1;
    size_t len = strlen(c->line);
    int n, i;

    memcpy(line, c->line, len + 1);
    n = proto_text_tokenize(line, t, c->max, &rest);
    ck_assert_int_eq(n, c->want);
    for (i = 0; i < n; i++) {
        /* In place: NUL terminated inside the line, length matches. */
        ck_assert(t[i].value >= line && t[i].value < line + len);
        ck_assert_uint_eq(t[i].length, strlen(t[i].value));
        ck_assert_uint_gt(t[i].length, 0);
        if (i > 0) {
            strcat(joined, "|");
        }
        strcat(joined, t[i].value);
    }
    ck_assert_str_eq(joined, c->joined);
    if (c->rest == NULL) {
        ck_assert_ptr_null(rest);
    } else {
        ck_assert_ptr_nonnull(rest);
        ck_assert(rest >= line && rest < line + len);
        ck_assert_str_eq(rest, c->rest);
    }
}
END_TEST

START_TEST(test_tokenize_rest_resumes)
{
    char line[100 * 5];
    struct token t[24];
    char *rest;
    char *p = line;
    int seen = 0;
    int i, n;

    for (i = 0; i < 100; i++) {
        p += sprintf(p, "%s%d", i ? "  " : "", i);
    }
    n = proto_text_tokenize(line, t, 24, &rest);
    for (;;) {
        for (i = 0; i < n; i++) {
            ck_assert_int_eq(atoi(t[i].value), seen);
            seen++;
        }
        if (rest == NULL) {
            break;
        }
        ck_assert_int_eq(n, 24);
        n = proto_text_tokenize(rest, t, 24, &rest);
    }
    ck_assert_int_eq(seen, 100);
}
END_TEST

/* --- a fake connection --------------------------------------------------- */

static struct conn fc;

static void conn_fake_init(void)
{
    memset(&fc, 0, sizeof(fc));
    fc.sfd = -1;
    fc.state = CONN_READ;
    fc.proto = CPROTO_TEXT;
    fc.iovsize = 4;             /* small: the queue must grow */
    fc.iov = malloc(sizeof(*fc.iov) * (size_t)fc.iovsize);
    fc.isize = 2;
    fc.ilist = malloc(sizeof(*fc.ilist) * (size_t)fc.isize);
    fc.wfirst = malloc(sizeof(struct wblock) + 4096);
    ck_assert(fc.iov != NULL && fc.ilist != NULL && fc.wfirst != NULL);
    fc.wfirst->next = NULL;
    fc.wfirst->size = 4096;
    fc.wfirst->used = 0;
    fc.wlast = fc.wfirst;
}

static void conn_fake_free(void)
{
    conn_out_reset(&fc);
    if (fc.nr.it != NULL) {
        item_remove(fc.nr.it);
    }
    free(fc.iov);
    free(fc.ilist);
    free(fc.wfirst);
    free(fc.rbuf);
    memset(&fc, 0, sizeof(fc));
}

/* Feed input and handle every complete request in it, doing what conn.c's
 * state machine does with buffered bytes.  Returns the last result. */
static enum proto_result feed(const char *input, size_t len)
{
    enum proto_result r = PROTO_DONE;

    free(fc.rbuf);
    fc.rbuf = malloc(len + 1);
    ck_assert_ptr_nonnull(fc.rbuf);
    memcpy(fc.rbuf, input, len);
    fc.rbuf[len] = '\0';
    fc.rsize = len + 1;
    fc.rcurr = fc.rbuf;
    fc.rbytes = len;
    while (fc.rbytes > 0) {
        size_t k;
        switch (fc.state) {
        case CONN_READ:
            r = proto_text_process(&fc);
            if (r != PROTO_DONE) {
                return r;
            }
            break;
        case CONN_NREAD:
            k = fc.rbytes < fc.nr.left ? fc.rbytes : fc.nr.left;
            memcpy(fc.nr.dst, fc.rcurr, k);
            fc.nr.dst += k;
            fc.nr.left -= k;
            fc.rcurr += k;
            fc.rbytes -= k;
            if (fc.nr.left == 0) {
                fc.state = CONN_READ;
                proto_text_complete_nread(&fc);
            }
            break;
        case CONN_SWALLOW:
            k = fc.rbytes < fc.sbytes ? fc.rbytes : fc.sbytes;
            fc.rcurr += k;
            fc.rbytes -= k;
            fc.sbytes -= k;
            if (fc.sbytes == 0) {
                fc.state = CONN_READ;
            }
            break;
        default:
            return r;
        }
    }
    return r;
}

/* The queued reply as one string (static; valid until the next call). */
static const char *output(void)
{
    static char out[64 * 1024];
    size_t n = 0;
    int i;

    for (i = 0; i < fc.iovused; i++) {
        ck_assert_uint_lt(n + fc.iov[i].iov_len, sizeof(out));
        memcpy(out + n, fc.iov[i].iov_base, fc.iov[i].iov_len);
        n += fc.iov[i].iov_len;
    }
    out[n] = '\0';
    return out;
}

/* Run input; the reply must be exactly want.  The queue is then emptied,
 * as after a send, releasing item references. */
static void expect(const char *input, const char *want)
{
    feed(input, strlen(input));
    ck_assert_str_eq(output(), want);
    conn_out_reset(&fc);
}

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

static void setup(void)
{
    settings_init();
    util_clock_init();
    ck_assert_int_eq(stats_init(1), 0);
    stats_reset();              /* counters start at 0 with CK_FORK=no too */
    ck_assert_int_eq(slabs_init(64 * 1024 * 1024, 1.25, 48, 512 * 1024,
                                1024 * 1024, false), 0);
    ck_assert_int_eq(item_locks_init(12), 0);
    ck_assert_int_eq(assoc_init(12), 0);
    ck_assert_int_eq(items_init(), 0);
    conn_fake_init();
}

static void teardown(void)
{
    conn_fake_free();
    assoc_destroy();
    slabs_destroy();
}

/* --- whole requests ------------------------------------------------------ */

struct e2e_case {
    const char *in;
    const char *out;
};

static const struct e2e_case e2e_cases[] = {
    {"get a\r\n", "END\r\n"},
    {"get a\n", "END\r\n"},
    {"get a b c\r\n", "END\r\n"},
    {"get a\r\nget b\r\n", "END\r\nEND\r\n"},
    {"set a 5 0 3\r\nabc\r\nget a\r\n",
     "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\n"},
    {"set a 0 0 3 noreply\r\nabc\r\nget a\r\n",
     "VALUE a 0 3\r\nabc\r\nEND\r\n"},
    /* A token after the length that is not "noreply" is ignored. */
    {"set a 0 0 1 junk\r\nx\r\n", "STORED\r\n"},
    {"set a 0 0 1\r\nx\r\nset c 0 0 1\r\nz\r\nget a b c\r\n",
     "STORED\r\nSTORED\r\nVALUE a 0 1\r\nx\r\nVALUE c 0 1\r\nz\r\nEND\r\n"},
    {"set a 0 0 0\r\n\r\nget a\r\n", "STORED\r\nVALUE a 0 0\r\n\r\nEND\r\n"},
    {"add a 0 0 1\r\nx\r\nadd a 0 0 1\r\ny\r\nget a\r\n",
     "STORED\r\nNOT_STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"},
    {"replace a 0 0 1\r\nx\r\nget a\r\n", "NOT_STORED\r\nEND\r\n"},
    {"set a 0 0 2\r\nab\r\nappend a 9 0 2\r\ncd\r\nprepend a 9 0 2\r\nzz\r\n"
     "get a\r\n",
     "STORED\r\nSTORED\r\nSTORED\r\nVALUE a 0 6\r\nzzabcd\r\nEND\r\n"},
    {"append a 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
    {"cas a 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n"},
    {"set a 0 0 1\r\nx\r\ncas a 0 0 1 1\r\ny\r\nget a\r\n",
     "STORED\r\nEXISTS\r\nVALUE a 0 1\r\nx\r\nEND\r\n"},
    {"cas a 0 0 1 abc\r\n", "CLIENT_ERROR bad command line format\r\n"},
    {"set a 0 0 1\r\n1\r\nincr a 41\r\ndecr a 2\r\nget a\r\n",
     "STORED\r\n42\r\n40\r\nVALUE a 0 2\r\n40\r\nEND\r\n"},
    {"set a 0 0 3\r\n100\r\ndecr a 1\r\nget a\r\n",
     "STORED\r\n99\r\nVALUE a 0 3\r\n99 \r\nEND\r\n"},
    {"set a 0 0 20\r\n18446744073709551615\r\nincr a 1\r\n",
     "STORED\r\n0\r\n"},
    {"incr a 1\r\n", "NOT_FOUND\r\n"},
    {"decr a 1\r\n", "NOT_FOUND\r\n"},
    {"set a 0 0 1\r\nx\r\nincr a 1\r\n",
     "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric "
     "value\r\n"},
    {"incr a x\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
    {"incr a -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
    {"set a 0 0 1\r\n5\r\nincr a 1 noreply\r\nget a\r\n",
     "STORED\r\nVALUE a 0 1\r\n6\r\nEND\r\n"},
    {"delete a\r\n", "NOT_FOUND\r\n"},
    {"delete a 0\r\n", "NOT_FOUND\r\n"},
    {"delete a noreply\r\n", ""},
    {"delete a 5\r\n",
     "CLIENT_ERROR bad command line format.  Usage: delete <key> "
     "[noreply]\r\n"},
    {"set a 0 0 1\r\nx\r\ndelete a\r\nget a\r\n",
     "STORED\r\nDELETED\r\nEND\r\n"},
    {"touch a 10\r\n", "NOT_FOUND\r\n"},
    {"touch a abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
    {"set a 0 0 1\r\nx\r\ntouch a 10\r\n", "STORED\r\nTOUCHED\r\n"},
    {"set a 7 0 1\r\nx\r\ngat 100 a\r\n",
     "STORED\r\nVALUE a 7 1\r\nx\r\nEND\r\n"},
    {"set a 0 -1 1\r\nx\r\nget a\r\n", "STORED\r\nEND\r\n"},
    {"set a 0 0 1\r\nx\r\nflush_all\r\nget a\r\n",
     "STORED\r\nOK\r\nEND\r\n"},
    {"set a 0 0 1\r\nx\r\nflush_all 100\r\nget a\r\n",
     "STORED\r\nOK\r\nVALUE a 0 1\r\nx\r\nEND\r\n"},
    {"flush_all noreply\r\n", ""},
    {"version\r\n", "VERSION " SERVER_VERSION "\r\n"},
    {"\r\n", "ERROR\r\n"},
    {"bogus\r\n", "ERROR\r\n"},
    {"GET a\r\n", "ERROR\r\n"},
    {"get\r\n", "ERROR\r\n"},
    {"set a 0 0\r\n", "ERROR\r\n"},
    {"set a 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
    {"set a x 0 1\r\n", "CLIENT_ERROR bad command line format\r\n"},
    /* Five bytes read for a 3-byte value; the leftover "\n" is an empty
     * command line. */
    {"set a 0 0 3\r\nabcd\r\nget a\r\n",
     "CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n"},
};

START_TEST(test_requests_table)
{
    expect(e2e_cases[_i].in, e2e_cases[_i].out);
    ck_assert_int_eq(fc.state, CONN_READ);
    ck_assert_uint_eq(fc.rbytes, 0);
    ck_assert_uint_eq(chunks_used(), items_curr());
}
END_TEST

START_TEST(test_gets_shows_item_cas)
{
    enum get_result why;
    struct item *it;
    unsigned long long cas;
    char want[128];

    expect("set a 3 0 2\r\nhi\r\n", "STORED\r\n");
    it = item_get("a", 1, &why);
    ck_assert_ptr_nonnull(it);
    cas = (unsigned long long)item_cas(it);
    item_remove(it);
    ck_assert_uint_ne(cas, 0);
    snprintf(want, sizeof(want), "VALUE a 3 2 %llu\r\nhi\r\nEND\r\n", cas);
    expect("gets a\r\n", want);
    snprintf(want, sizeof(want), "cas a 0 0 2 %llu\r\nho\r\n", cas);
    expect(want, "STORED\r\n");
    expect(want, "EXISTS\r\n");
    expect("get a\r\n", "VALUE a 0 2\r\nho\r\nEND\r\n");
}
END_TEST

START_TEST(test_get_more_keys_than_tokens)
{
    char line[1024] = "get";
    char want[4096] = "";
    char key[16];
    int i;

    /* 40 keys: more than one tokenizer batch (24). */
    for (i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        sprintf(line + strlen(line), " %s", key);
        if (i % 3 == 0) {
            char cmd[64];
            snprintf(cmd, sizeof(cmd), "set %s 0 0 %zu\r\n%s\r\n", key,
                     strlen(key), key);
            expect(cmd, "STORED\r\n");
            sprintf(want + strlen(want), "VALUE %s 0 %zu\r\n%s\r\n", key,
                    strlen(key), key);
        }
    }
    strcat(line, "\r\n");
    strcat(want, "END\r\n");
    expect(line, want);
    ck_assert_uint_eq(chunks_used(), items_curr());
}
END_TEST

START_TEST(test_bad_key_rolls_back_multiget)
{
    char line[600];
    char big[KEY_MAX_LENGTH + 2];

    memset(big, 'b', KEY_MAX_LENGTH + 1);
    big[KEY_MAX_LENGTH + 1] = '\0';
    expect("set a 0 0 1\r\nx\r\n", "STORED\r\n");
    snprintf(line, sizeof(line), "get a %s a\r\n", big);
    expect(line, "CLIENT_ERROR bad command line format\r\n");
    /* The reference taken for "a" was dropped with the rollback. */
    ck_assert_uint_eq(chunks_used(), items_curr());
    /* 250 bytes is fine. */
    big[KEY_MAX_LENGTH] = '\0';
    snprintf(line, sizeof(line), "get %s\r\n", big);
    expect(line, "END\r\n");
}
END_TEST

START_TEST(test_too_large_value_is_swallowed)
{
    expect("set a 0 0 1\r\nx\r\n", "STORED\r\n");
    expect("set a 0 0 2000000\r\n",
           "SERVER_ERROR object too large for cache\r\n");
    ck_assert_int_eq(fc.state, CONN_SWALLOW);
    ck_assert_uint_eq(fc.sbytes, 2000002);
    /* A failed set removes the old value. */
    fc.state = CONN_READ;
    expect("get a\r\n", "END\r\n");
}
END_TEST

START_TEST(test_value_split_across_reads)
{
    ck_assert_int_eq(feed("set a 0 0 5\r\nab", 15), PROTO_DONE);
    ck_assert_int_eq(fc.state, CONN_NREAD);
    ck_assert_str_eq(output(), "");
    feed("cde\r\nget a\r\n", 12);
    ck_assert_str_eq(output(), "STORED\r\nVALUE a 0 5\r\nabcde\r\nEND\r\n");
}
END_TEST

START_TEST(test_partial_line_needs_more)
{
    ck_assert_int_eq(feed("get a", 5), PROTO_NEED_MORE);
    ck_assert_uint_eq(fc.rbytes, 5);
    ck_assert_str_eq(output(), "");
}
END_TEST

START_TEST(test_long_lines)
{
    size_t n = TEXT_LINE_MAX + 100;
    char *buf = malloc(n + 1);

    ck_assert_ptr_nonnull(buf);
    /* Garbage without a newline past the limit: close. */
    memset(buf, 'x', n);
    ck_assert_int_eq(feed(buf, n), PROTO_CLOSE);
    /* A long multi-get is allowed to keep coming. */
    memcpy(buf, "get ", 4);
    memset(buf + 4, 'k', n - 4);
    ck_assert_int_eq(feed(buf, n), PROTO_NEED_MORE);
    free(buf);
}
END_TEST

START_TEST(test_quit_closes)
{
    ck_assert_int_eq(feed("quit\r\n", 6), PROTO_CLOSE);
    ck_assert(fc.close_after_write);
}
END_TEST

/* The protocol is chosen in conn.c before the text parser runs; a text
 * connection treats a 0x80 byte as part of a (bad) command line. */
START_TEST(test_binary_byte_is_just_text_here)
{
    fc.proto = CPROTO_TEXT;
    expect("\x80\r\n", "ERROR\r\n");
    expect("get a\r\n", "END\r\n");
}
END_TEST

START_TEST(test_commands_counted)
{
    struct thread_stats t;

    expect("get a b\r\nbogus\r\nset a 0 0 1\r\nx\r\nget a\r\n",
           "END\r\nERROR\r\nSTORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
    stats_sum(&t);
    ck_assert_uint_eq(t.get_cmds, 3);
    ck_assert_uint_eq(t.get_misses, 2);
    ck_assert_uint_eq(t.client_errors, 1);
    ck_assert_uint_eq(t.slab[1].get_hits, 1);
    ck_assert_uint_eq(t.slab[1].set_cmds, 1);
}
END_TEST

static Suite *proto_text_suite(void)
{
    Suite *s = suite_create("proto_text");
    TCase *tok = tcase_create("tokenize");
    TCase *req = tcase_create("requests");
    TCase *framing = tcase_create("framing");

    tcase_add_loop_test(tok, test_tokenize_table, 0,
                        sizeof(tok_cases) / sizeof(tok_cases[0]));
    tcase_add_test(tok, test_tokenize_rest_resumes);
    tcase_add_checked_fixture(req, setup, teardown);
    tcase_add_loop_test(req, test_requests_table, 0,
                        sizeof(e2e_cases) / sizeof(e2e_cases[0]));
    tcase_add_test(req, test_gets_shows_item_cas);
    tcase_add_test(req, test_get_more_keys_than_tokens);
    tcase_add_test(req, test_bad_key_rolls_back_multiget);
    tcase_add_test(req, test_too_large_value_is_swallowed);
    tcase_add_test(req, test_commands_counted);
    tcase_add_checked_fixture(framing, setup, teardown);
    tcase_add_test(framing, test_value_split_across_reads);
    tcase_add_test(framing, test_partial_line_needs_more);
    tcase_add_test(framing, test_long_lines);
    tcase_add_test(framing, test_quit_closes);
    tcase_add_test(framing, test_binary_byte_is_just_text_here);
    suite_add_tcase(s, tok);
    suite_add_tcase(s, req);
    suite_add_tcase(s, framing);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proto_text_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
