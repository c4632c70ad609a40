/*
 * check_conn_names.c - conn_state_name() (conn.c): every state of enum
 * conn_state has its own name from the CONN_STATES list, CONN_CLOSED
 * included, and a value past the list reads "invalid", never past the
 * array.
 */
#include "memcached.h"
#include "conn.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_every_state_named)
{
    for (int i = 0; i < CONN_MAX_STATE; i++) {
        const char *n = conn_state_name((enum conn_state)i);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_ne(n, "invalid");
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(n, conn_state_name((enum conn_state)j));
        }
    }
    ck_assert_str_eq(conn_state_name(CONN_DIGEST), "digest");
    ck_assert_str_eq(conn_state_name(CONN_CLOSING), "closing");
    ck_assert_str_eq(conn_state_name(CONN_CLOSED), "closed");
    ck_assert_str_eq(conn_state_name(CONN_MAX_STATE), "invalid");
    ck_assert_str_eq(conn_state_name((enum conn_state)-1), "invalid");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conn_names");
    TCase *tc = tcase_create("names");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_every_state_named);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
