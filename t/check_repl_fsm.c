/*
 * check_repl_fsm.c - unit tests for repl_fsm.c: every handshake step,
 * state of the link's two directions, stream mode and link summary has
 * its own name; exactly the transitions drawn in doc/replication.txt
 * are legal, every other pair is not; and the summary follows from the
 * directions.
 */
#include "repl_fsm.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* A legal transition, as drawn in doc/replication.txt. */
struct edge {
    int from, to;
};

static bool listed(const struct edge *e, size_t n, int from, int to)
{
    for (size_t i = 0; i < n; i++) {
        if (e[i].from == from && e[i].to == to) {
            return true;
        }
    }
    return false;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct edge hs_edges[] = {
    { HS_WAIT_PAIR, HS_WAIT_AUTH }, { HS_WAIT_AUTH, HS_WAIT_HELLO },
    { HS_WAIT_HELLO, HS_DONE },
};

static const struct edge out_edges[] = {
    { OUT_HANDSHAKE, OUT_COPY }, { OUT_HANDSHAKE, OUT_CATCHUP },
    { OUT_COPY, OUT_LIVE }, { OUT_CATCHUP, OUT_LIVE },
};

static const struct edge in_edges[] = {
    { IN_HANDSHAKE, IN_RESUMED }, { IN_RESUMED, IN_COPY },
    { IN_RESUMED, IN_LIVE }, { IN_COPY, IN_LIVE },
};

static const struct edge mode_edges[] = {
    { STREAM_OFF, STREAM_COPY }, { STREAM_OFF, STREAM_CATCHUP },
    { STREAM_COPY, STREAM_QUEUED }, { STREAM_CATCHUP, STREAM_QUEUED },
    { STREAM_QUEUED, STREAM_DIRECT },
    { STREAM_COPY, STREAM_OFF }, { STREAM_CATCHUP, STREAM_OFF },
    { STREAM_QUEUED, STREAM_OFF }, { STREAM_DIRECT, STREAM_OFF },
};

static const struct edge summary_edges[] = {
    { REPL_NONE, REPL_HANDSHAKE }, { REPL_HANDSHAKE, REPL_SYNCING },
    { REPL_SYNCING, REPL_LINKED }, { REPL_HANDSHAKE, REPL_NONE },
    { REPL_SYNCING, REPL_NONE }, { REPL_LINKED, REPL_NONE },
};

/* Names: each set distinct and non-empty, "invalid" past the end. */
static void check_names(const char *(*name)(int), int max)
{
    for (int i = 0; i < max; i++) {
        ck_assert_ptr_nonnull(name(i));
        ck_assert_uint_gt(strlen(name(i)), 0);
        ck_assert_str_ne(name(i), "invalid");
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(name(i), name(j));
        }
    }
    ck_assert_str_eq(name(max), "invalid");
    ck_assert_str_eq(name(-1), "invalid");
}

static const char *hs_name(int s) { return hs_step_name(s); }
static const char *out_name(int s) { return link_out_name(s); }
static const char *in_name(int s) { return link_in_name(s); }
static const char *mode_name(int s) { return stream_mode_name(s); }
static const char *summary_name(int s) { return repl_state_name(s); }

START_TEST(test_names)
{
    check_names(hs_name, HS_STEP_MAX);
    check_names(out_name, LINK_OUT_MAX);
    check_names(in_name, LINK_IN_MAX);
    check_names(mode_name, STREAM_MODE_MAX);
    check_names(summary_name, REPL_MAX_STATE);
    /* What `stats replication` has always shown. */
    ck_assert_str_eq(repl_state_name(REPL_CONNECTING), "connecting");
    ck_assert_str_eq(repl_state_name(REPL_LINKED), "linked");
}
END_TEST

/* Every pair, legal exactly when listed. */
static void check_table(bool (*legal)(int, int), int max,
                        const struct edge *e, size_t n)
{
    for (int from = 0; from < max; from++) {
        for (int to = 0; to < max; to++) {
            ck_assert_msg(legal(from, to) == listed(e, n, from, to),
                          "%d -> %d", from, to);
        }
    }
}

static bool hs_ok(int a, int b) { return hs_step_legal(a, b); }
static bool out_ok(int a, int b) { return link_out_legal(a, b); }
static bool in_ok(int a, int b) { return link_in_legal(a, b); }
static bool mode_ok(int a, int b) { return stream_mode_legal(a, b); }
static bool summary_ok(int a, int b) { return repl_state_legal(a, b); }

START_TEST(test_handshake_transitions)
{
    check_table(hs_ok, HS_STEP_MAX, hs_edges, N(hs_edges));
}
END_TEST

START_TEST(test_outbound_transitions)
{
    check_table(out_ok, LINK_OUT_MAX, out_edges, N(out_edges));
}
END_TEST

START_TEST(test_inbound_transitions)
{
    check_table(in_ok, LINK_IN_MAX, in_edges, N(in_edges));
    /* The orders a peer must not send. */
    ck_assert(!link_in_legal(IN_COPY, IN_COPY));        /* SYNC twice */
    ck_assert(!link_in_legal(IN_LIVE, IN_COPY));        /* SYNC after */
    ck_assert(!link_in_legal(IN_RESUMED, IN_RESUMED));  /* no-op */
}
END_TEST

START_TEST(test_stream_transitions)
{
    check_table(mode_ok, STREAM_MODE_MAX, mode_edges, N(mode_edges));
    ck_assert(!stream_mode_legal(STREAM_OFF, STREAM_MODE_MAX));
    ck_assert(!stream_mode_legal(STREAM_MODE_MAX, STREAM_OFF));
}
END_TEST

START_TEST(test_summary_transitions)
{
    check_table(summary_ok, REPL_MAX_STATE, summary_edges,
                N(summary_edges));
}
END_TEST

/* Which pairs of directions a link can be in: the outbound side leaves
 * its handshake on the peer's RESUME, which is handled only after ours
 * was sent (inbound RESUMED); the inbound side moves on only on what
 * follows the peer's RESUME. */
static bool reachable(int out, int in)
{
    return out == OUT_HANDSHAKE ? in <= IN_RESUMED : in >= IN_RESUMED;
}

/* The summary of each pair of directions, and every legal move of
 * either direction moves the summary legally. */
START_TEST(test_summary_of_directions)
{
    for (int in = 0; in < LINK_IN_MAX; in++) {
        ck_assert_int_eq(link_summary(OUT_HANDSHAKE, in), REPL_HANDSHAKE);
        ck_assert_int_eq(link_summary(OUT_COPY, in), REPL_SYNCING);
    }
    ck_assert_int_eq(link_summary(OUT_CATCHUP, IN_RESUMED), REPL_SYNCING);
    ck_assert_int_eq(link_summary(OUT_LIVE, IN_COPY), REPL_SYNCING);
    ck_assert_int_eq(link_summary(OUT_CATCHUP, IN_LIVE), REPL_LINKED);
    ck_assert_int_eq(link_summary(OUT_LIVE, IN_LIVE), REPL_LINKED);

    for (int o = 0; o < LINK_OUT_MAX; o++) {
        for (int i = 0; i < LINK_IN_MAX; i++) {
            enum repl_state s = link_summary(o, i);
            if (!reachable(o, i)) {
                continue;
            }
            for (int o2 = 0; o2 < LINK_OUT_MAX; o2++) {
                enum repl_state t = link_summary(o2, i);
                if (link_out_legal(o, o2) && reachable(o2, i) && s != t) {
                    ck_assert_msg(repl_state_legal(s, t), "out %d->%d", o,
                                  o2);
                }
            }
            for (int i2 = 0; i2 < LINK_IN_MAX; i2++) {
                enum repl_state t = link_summary(o, i2);
                if (link_in_legal(i, i2) && reachable(o, i2) && s != t) {
                    ck_assert_msg(repl_state_legal(s, t), "in %d->%d", i,
                                  i2);
                }
            }
        }
    }
    /* An open link starts in both handshakes, summed up as such. */
    ck_assert(repl_state_legal(REPL_NONE,
                               link_summary(OUT_HANDSHAKE, IN_HANDSHAKE)));
}
END_TEST

static Suite *fsm_suite(void)
{
    Suite *s = suite_create("repl_fsm");
    TCase *names = tcase_create("names");
    TCase *tr = tcase_create("transitions");

    tcase_add_test(names, test_names);
    tcase_add_test(tr, test_handshake_transitions);
    tcase_add_test(tr, test_outbound_transitions);
    tcase_add_test(tr, test_inbound_transitions);
    tcase_add_test(tr, test_stream_transitions);
    tcase_add_test(tr, test_summary_transitions);
    tcase_add_test(tr, test_summary_of_directions);
    suite_add_tcase(s, names);
    suite_add_tcase(s, tr);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fsm_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
