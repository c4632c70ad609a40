/*
 * check_udp.c - unit tests for the UDP frame of conn_udp.c: which request
 * headers are served, the reply header's byte order, and how many
 * datagrams a reply takes.
 */
#include "conn_udp.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* A request: header fields, then one byte of command. */
static size_t request(unsigned char *buf, unsigned id, unsigned seq,
                      unsigned total, unsigned reserved)
{
    udp_frame_header(buf, (uint16_t)id, (uint16_t)seq, (uint16_t)total);
    buf[6] = (unsigned char)(reserved >> 8);
    buf[7] = (unsigned char)(reserved & 0xff);
    buf[8] = 'g';
    return 9;
}

START_TEST(test_single_datagram_served)
{
    unsigned char buf[16];
    uint16_t id = 0;
    size_t n = request(buf, 0xabcd, 0, 1, 0);

    ck_assert_int_eq(udp_frame_check(buf, n, &id), UDP_FRAME_OK);
    ck_assert_uint_eq(id, 0xabcd);
    /* memcached ignores the sequence number and the reserved field. */
    n = request(buf, 7, 3, 1, 0x1234);
    ck_assert_int_eq(udp_frame_check(buf, n, &id), UDP_FRAME_OK);
    ck_assert_uint_eq(id, 7);
}
END_TEST

START_TEST(test_bad_frames_refused)
{
    unsigned char buf[16];
    uint16_t id = 0;
    size_t n;

    n = request(buf, 1, 0, 2, 0);
    ck_assert_int_eq(udp_frame_check(buf, n, &id), UDP_FRAME_MULTI);
    n = request(buf, 1, 0, 0, 0);
    ck_assert_int_eq(udp_frame_check(buf, n, &id), UDP_FRAME_MULTI);
    n = request(buf, 1, 0, 0x101, 0);
    ck_assert_int_eq(udp_frame_check(buf, n, &id), UDP_FRAME_MULTI);
    ck_assert_int_eq(udp_frame_check(buf, 8, &id), UDP_FRAME_SHORT);
    ck_assert_int_eq(udp_frame_check(buf, 0, &id), UDP_FRAME_SHORT);
}
END_TEST

START_TEST(test_reply_header_big_endian)
{
    unsigned char h[UDP_HEADER_SIZE];
    static const unsigned char want[] = {0x12, 0x34, 0x00, 0x02,
                                         0x01, 0x00, 0, 0};

    udp_frame_header(h, 0x1234, 2, 256);
    ck_assert_mem_eq(h, want, sizeof(want));
}
END_TEST

START_TEST(test_datagram_count)
{
    ck_assert_uint_eq(udp_frame_count(0), 0);
    ck_assert_uint_eq(udp_frame_count(1), 1);
    ck_assert_uint_eq(udp_frame_count(UDP_DATA_SIZE), 1);
    ck_assert_uint_eq(udp_frame_count(UDP_DATA_SIZE + 1), 2);
    /* udp.t's 20000-byte value: "VALUE bigvalue 0 20000\r\n", the
     * value, "\r\nEND\r\n". */
    ck_assert_uint_eq(udp_frame_count(24 + 20000 + 7), 15);
    /* The largest reply sent fits the 16-bit count. */
    ck_assert_uint_lt(udp_frame_count(UDP_MAX_REPLY), 65536);
}
END_TEST

static Suite *udp_suite(void)
{
    Suite *s = suite_create("udp_frame");
    TCase *req = tcase_create("request header");
    TCase *rep = tcase_create("reply framing");

    tcase_add_test(req, test_single_datagram_served);
    tcase_add_test(req, test_bad_frames_refused);
    tcase_add_test(rep, test_reply_header_big_endian);
    tcase_add_test(rep, test_datagram_count);
    suite_add_tcase(s, req);
    suite_add_tcase(s, rep);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(udp_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
