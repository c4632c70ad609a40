/*
 * check_authfile.c - unit tests for authfile.c: how the SASL password
 * file (memcached's --enable-sasl-pwdb format) and the -Y file are
 * matched.  Each test writes a small file in a checked fixture.
 */
#include "authfile.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[] = "/tmp/check-authfile-XXXXXX";

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void teardown(void)
{
    unlink(path);
    strcpy(path, "/tmp/check-authfile-XXXXXX");
}

static bool pwdb(const char *user, const char *pass)
{
    return authfile_check_pwdb(path, user, strlen(user), pass,
                               strlen(pass));
}

START_TEST(test_pwdb_password_ends_at_colon_or_eol)
{
    write_file("alice:secret:extra tokens\nbob:pw\r\ncarol:last");
    ck_assert(pwdb("alice", "secret"));
    ck_assert(!pwdb("alice", "secret:extra tokens"));
    ck_assert(pwdb("bob", "pw"));
    ck_assert(pwdb("carol", "last"));
}
END_TEST

START_TEST(test_pwdb_refuses_prefixes_and_other_users)
{
    write_file("testuser:testpass\ntestuser2:other\n");
    ck_assert(!pwdb("testuser", "testpas"));
    ck_assert(!pwdb("testuser", "testpass!"));
    ck_assert(!pwdb("testuser", ""));
    ck_assert(!pwdb("testuse", "testpass"));
    ck_assert(!pwdb("testuser", "other"));
    ck_assert(pwdb("testuser2", "other"));
    ck_assert(!pwdb("", "testpass"));
}
END_TEST

START_TEST(test_pwdb_first_entry_of_a_user_decides)
{
    write_file("dup:one\ndup:two\n");
    ck_assert(pwdb("dup", "one"));
    ck_assert(!pwdb("dup", "two"));
}
END_TEST

START_TEST(test_pwdb_is_read_at_each_check)
{
    write_file("u:old\n");
    ck_assert(pwdb("u", "old"));
    write_file("u:new\n");
    ck_assert(!pwdb("u", "old"));
    ck_assert(pwdb("u", "new"));
    unlink(path);
    ck_assert(!pwdb("u", "new"));
}
END_TEST

START_TEST(test_authfile_password_runs_to_end_of_line)
{
    write_file("# comment\nuser:pass word:with colon\n:nouser\n");
    ck_assert_int_eq(authfile_load(path), 0);
    ck_assert(authfile_check("user", 4, "pass word:with colon", 20));
    ck_assert(!authfile_check("user", 4, "pass word", 9));
    ck_assert(!authfile_check("", 0, "nouser", 6));
}
END_TEST

static Suite *authfile_suite(void)
{
    Suite *s = suite_create("authfile");
    TCase *pw = tcase_create("pwdb");
    TCase *y = tcase_create("auth_file");

    tcase_add_checked_fixture(pw, setup, teardown);
    tcase_add_test(pw, test_pwdb_password_ends_at_colon_or_eol);
    tcase_add_test(pw, test_pwdb_refuses_prefixes_and_other_users);
    tcase_add_test(pw, test_pwdb_first_entry_of_a_user_decides);
    tcase_add_test(pw, test_pwdb_is_read_at_each_check);
    suite_add_tcase(s, pw);
    tcase_add_checked_fixture(y, setup, teardown);
    tcase_add_test(y, test_authfile_password_runs_to_end_of_line);
    suite_add_tcase(s, y);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(authfile_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
