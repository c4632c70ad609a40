/*
 * check_repl_codec.c - unit tests for repl_codec.c, the replication
 * stream's text format: every record the hook encodes decodes back to
 * the same fields, every control line decodes, and every malformed form
 * is refused (the link is closed on it, never guessed at).
 */
#include "memcached.h"
#include "hash.h"
#include "repl_codec.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VLEN_MAX (1024 * 1024)

/* Decode a line given with its "\r\n", as the link reads it. */
static int decode(const char *line, size_t n, struct repl_rec *r)
{
    ck_assert(n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n');
    return repl_decode(line, n - 2, VLEN_MAX, r);
}

/* buf[0..n) as a C string (encoders do not terminate what they write). */
static const char *buf_str(char *buf, size_t n)
{
    ck_assert(n < REC_LINE_MAX);
    buf[n] = '\0';
    return buf;
}

static int decode_str(const char *line, struct repl_rec *r)
{
    return repl_decode(line, strlen(line), VLEN_MAX, r);
}

/* An item as the storage side lays it out, for the store encoder. */
static struct item *make_item(const char *key, size_t nkey, const char *val,
                              uint32_t flags, uint32_t exptime,
                              uint64_t version, uint8_t it_flags)
{
    size_t nbytes = strlen(val) + 2;
    struct item *it = calloc(1, ITEM_HDR_SIZE + nkey + nbytes);

    ck_assert_ptr_nonnull(it);
    it->nkey = (uint8_t)nkey;
    it->nbytes = (uint32_t)nbytes;
    it->flags = flags;
    it->exptime = exptime;
    it->version = version;
    it->it_flags = it_flags;
    memcpy(ITEM_key(it), key, nkey);
    memcpy(ITEM_data(it), val, nbytes - 2);
    memcpy(ITEM_data(it) + nbytes - 2, "\r\n", 2);
    return it;
}

START_TEST(test_store_round_trip)
{
    char buf[REC_LINE_MAX];
    struct repl_rec r;
    struct item *it = make_item("session:42", 10, "hello", 7, 1796000000,
                                UINT64_MAX, 0);
    size_t n = repl_fmt_store(buf, it, 'S');

    ck_assert_int_eq(memcmp(buf, "S session:42 7 1796000000 "
                                 "18446744073709551615 5\r\n", n), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_STORE);
    ck_assert(r.live);
    ck_assert(!r.b64);
    ck_assert_uint_eq(r.nkey, 10);
    ck_assert_int_eq(memcmp(r.key, "session:42", 10), 0);
    ck_assert_uint_eq(r.flags, 7);
    ck_assert_uint_eq(r.exptime, 1796000000);
    ck_assert_uint_eq(r.version, UINT64_MAX);
    ck_assert_uint_eq(r.vlen, 5);
    /* The copy's lower-case record: same fields, not live. */
    n = repl_fmt_store(buf, it, 's');
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert(!r.live);
    free(it);
}
END_TEST

START_TEST(test_meta_marks)
{
    char buf[REC_LINE_MAX];
    struct repl_rec r;
    struct item *it = make_item("k", 1, "v", 0, 0, 9, ITEM_STALE);
    struct item *both = make_item("a b", 3, "v", 0, 0, 9,
                                  ITEM_STALE | ITEM_TOKEN_SENT);
    struct item *plain = make_item("k", 1, "v", 0, 0, 9, ITEM_FETCHED);
    size_t n = repl_fmt_store(buf, it, 'S');

    /* A stale item: its marks in a sixth field. */
    ck_assert_int_eq(memcmp(buf, "S k 0 0 9 1 1\r\n", n), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_uint_eq(r.marks, REPL_MARK_STALE);
    ck_assert_uint_eq(r.vlen, 1);
    /* Without marks (the common case): no sixth field. */
    n = repl_fmt_store(buf, plain, 's');
    ck_assert_int_eq(memcmp(buf, "s k 0 0 9 1\r\n", n), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_uint_eq(r.marks, 0);
    /* Marks before the base64 key mark. */
    n = repl_fmt_store(buf, both, 'S');
    ck_assert_int_eq(memcmp(buf + n - 6, " 3 b\r\n", 6), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_uint_eq(r.marks, 3);
    ck_assert(r.b64);
    ck_assert_int_eq(memcmp(r.key, "a b", 3), 0);
    /* M: the marks of one version; a live record. */
    n = repl_fmt_marks(buf, "k", 1, false, 77, REPL_MARK_TOKEN);
    ck_assert_int_eq(memcmp(buf, "M k 77 2\r\n", n), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_MARKS);
    ck_assert(r.live);
    ck_assert_uint_eq(r.version, 77);
    ck_assert_uint_eq(r.marks, REPL_MARK_TOKEN);
    n = repl_fmt_marks(buf, "a b", 3, false, 5, 3);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert(r.b64);
    ck_assert_uint_eq(r.marks, 3);
    free(it);
    free(both);
    free(plain);
}
END_TEST

START_TEST(test_keys_that_need_base64)
{
    static const char odd[] = "a b\r\x01";
    char buf[REC_LINE_MAX];
    struct repl_rec r;
    struct item *it = make_item(odd, 5, "v", 0, 0, 9, 0);
    struct item *bin = make_item("plain", 5, "v", 0, 0, 9,
                                 ITEM_KEY_BINARY);
    size_t n = repl_fmt_store(buf, it, 'S');

    ck_assert_int_eq(memcmp(buf + n - 4, " b\r\n", 4), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert(r.b64);
    ck_assert(!r.binary);
    ck_assert_uint_eq(r.nkey, 5);
    ck_assert_int_eq(memcmp(r.key, odd, 5), 0);
    /* A key the client gave in base64 (meta b) keeps that mark. */
    n = repl_fmt_store(buf, bin, 'S');
    ck_assert_int_eq(memcmp(buf + n - 4, " B\r\n", 4), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert(r.binary);
    ck_assert_int_eq(memcmp(r.key, "plain", 5), 0);
    n = repl_fmt_delete(buf, 'd', odd, 5, false, 3);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_DELETE);
    ck_assert(!r.live);
    ck_assert_int_eq(memcmp(r.key, odd, 5), 0);
    free(it);
    free(bin);
}
END_TEST

START_TEST(test_delete_touch_flush_round_trip)
{
    char buf[REC_LINE_MAX];
    struct repl_rec r;
    size_t n = repl_fmt_delete(buf, 'D', "k", 1, false, 12345);

    ck_assert_int_eq(memcmp(buf, "D k 12345\r\n", n), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_DELETE);
    ck_assert(r.live);
    ck_assert_uint_eq(r.version, 12345);
    n = repl_fmt_touch(buf, "k", 1, false, 4000000000U, 77);
    ck_assert_int_eq(memcmp(buf, "T k 4000000000 77\r\n", n), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_TOUCH);
    ck_assert_uint_eq(r.exptime, 4000000000U);
    ck_assert_uint_eq(r.version, 77);
    n = repl_fmt_flush(buf, 'F', 99, 1796000000);
    ck_assert_int_eq(memcmp(buf, "F 99 1796000000\r\n", n), 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_FLUSH);
    ck_assert(r.live);
    ck_assert_uint_eq(r.version, 99);
    ck_assert_uint_eq(r.at, 1796000000);
    n = repl_fmt_flush(buf, 'f', 1, 0);
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert(!r.live);
}
END_TEST

START_TEST(test_control_lines)
{
    struct repl_rec r;

    ck_assert_int_eq(decode_str("PING 1796000000123", &r), 0);
    ck_assert_int_eq(r.type, REC_PING);
    ck_assert(r.has_ms);
    ck_assert_uint_eq(r.ms, 1796000000123ULL);
    ck_assert_int_eq(decode_str("PING x", &r), 0);  /* liveness only */
    ck_assert(!r.has_ms);
    ck_assert(!r.ask);
    ck_assert_int_eq(decode_str("PING w", &r), 0);  /* no number: no ask */
    ck_assert(!r.has_ms && !r.ask);
    ck_assert_int_eq(decode_str("PING w-1", &r), 0);
    ck_assert(!r.has_ms && !r.ask);
    ck_assert_int_eq(decode_str("PING w18446744073709551616", &r), 0);
    ck_assert(!r.has_ms && !r.ask);
    ck_assert_int_eq(decode_str("ACK 10 2 30", &r), 0);
    ck_assert_int_eq(r.type, REC_ACK);
    ck_assert_uint_eq(r.bytes, 10);
    ck_assert_uint_eq(r.items, 2);
    ck_assert_uint_eq(r.offset, 30);
    ck_assert_uint_eq(r.records, 2);    /* no records field: the items */
    ck_assert_int_eq(decode_str("ACK 10 2 30 40", &r), 0);
    ck_assert_uint_eq(r.records, 40);
    ck_assert_int_eq(decode_str("SYNC 5 100", &r), 0);
    ck_assert_int_eq(r.type, REC_SYNC);
    ck_assert_uint_eq(r.items, 5);
    ck_assert_uint_eq(r.offset, 100);
    ck_assert_uint_eq(r.records, 0);
    ck_assert_int_eq(decode_str("SYNC 5 100 7", &r), 0);
    ck_assert_uint_eq(r.records, 7);
    ck_assert_int_eq(decode_str("PSYNC 123", &r), 0);
    ck_assert_int_eq(r.type, REC_PSYNC);
    ck_assert_uint_eq(r.offset, 123);
    ck_assert_int_eq(decode_str("SYNCED", &r), 0);
    ck_assert_int_eq(r.type, REC_SYNCED);
    ck_assert_int_eq(decode_str("DIGEST 18446744073709551615 3 40 50 "
                                "1796000010", &r), 0);
    ck_assert_int_eq(r.type, REC_DIGEST);
    ck_assert_uint_eq(r.sum, UINT64_MAX);
    ck_assert_uint_eq(r.items, 3);
    ck_assert_uint_eq(r.records, 40);
    ck_assert_uint_eq(r.applied, 50);
    ck_assert_uint_eq(r.at, 1796000010);
    ck_assert_int_eq(decode_str("RESYNC", &r), 0);
    ck_assert_int_eq(r.type, REC_RESYNC);
    /* The peer could not store the record ending at offset 4567. */
    ck_assert_int_eq(decode_str("NAK 4567", &r), 0);
    ck_assert_int_eq(r.type, REC_NAK);
    ck_assert_uint_eq(r.offset, 4567);
    ck_assert(!r.live);
}
END_TEST

/* Each control line's encoder writes what the decoder reads back, the
 * bytes exactly as the peer has always received them. */
START_TEST(test_control_lines_round_trip)
{
    char buf[REC_LINE_MAX];
    struct repl_rec r;
    size_t n;

    n = repl_fmt_ping(buf, 1796000000123ULL);
    ck_assert_str_eq(buf_str(buf, n), "PING 1796000000123\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_PING);
    ck_assert(r.has_ms);
    ck_assert_uint_eq(r.ms, 1796000000123ULL);

    n = repl_fmt_ping_ask(buf, 7);
    ck_assert_str_eq(buf_str(buf, n), "PING w7\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_PING);
    ck_assert(r.ask && !r.has_ms);
    ck_assert_uint_eq(r.serial, 7);

    n = repl_fmt_pong(buf, UINT64_MAX);
    ck_assert_str_eq(buf_str(buf, n), "PONG 18446744073709551615\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_PONG);
    ck_assert_uint_eq(r.serial, UINT64_MAX);

    n = repl_fmt_ack(buf, 10, 2, UINT64_MAX, 40);
    ck_assert_str_eq(buf_str(buf, n),
                     "ACK 10 2 18446744073709551615 40\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_ACK);
    ck_assert_uint_eq(r.bytes, 10);
    ck_assert_uint_eq(r.items, 2);
    ck_assert_uint_eq(r.offset, UINT64_MAX);
    ck_assert_uint_eq(r.records, 40);

    n = repl_fmt_nak(buf, 4567);
    ck_assert_str_eq(buf_str(buf, n), "NAK 4567\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_NAK);
    ck_assert_uint_eq(r.offset, 4567);

    n = repl_fmt_sync(buf, 5, 100, 0);
    ck_assert_str_eq(buf_str(buf, n), "SYNC 5 100 0\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_SYNC);
    ck_assert_uint_eq(r.items, 5);
    ck_assert_uint_eq(r.offset, 100);
    ck_assert_uint_eq(r.records, 0);

    n = repl_fmt_psync(buf, 0);
    ck_assert_str_eq(buf_str(buf, n), "PSYNC 0\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_PSYNC);
    ck_assert_uint_eq(r.offset, 0);

    n = repl_fmt_synced(buf, 3);
    ck_assert_str_eq(buf_str(buf, n), "SYNCED 3\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_SYNCED);

    n = repl_fmt_digest(buf, UINT64_MAX, 3, 40, 50, UINT32_MAX);
    ck_assert_str_eq(buf_str(buf, n), "DIGEST 18446744073709551615 3 40 "
                                      "50 4294967295\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_DIGEST);
    ck_assert_uint_eq(r.sum, UINT64_MAX);
    ck_assert_uint_eq(r.items, 3);
    ck_assert_uint_eq(r.records, 40);
    ck_assert_uint_eq(r.applied, 50);
    ck_assert_uint_eq(r.at, UINT32_MAX);

    n = repl_fmt_resync(buf);
    ck_assert_str_eq(buf_str(buf, n), "RESYNC\r\n");
    ck_assert_int_eq(decode(buf, n, &r), 0);
    ck_assert_int_eq(r.type, REC_RESYNC);

    /* RESUME is read by walk_resume(), not repl_decode. */
    n = repl_fmt_resume(buf, 12345678901234ULL, 0, 7, UINT64_MAX);
    ck_assert_str_eq(buf_str(buf, n), "RESUME 12345678901234 0 7 "
                                      "18446744073709551615\r\n");
}
END_TEST

START_TEST(test_malformed_lines_refused)
{
    static const char *const bad[] = {
        "", " ", "X k 1", "S", "S k", "S k 0 0 1", "S k 0 0 1 1 4",
        "S k 0 0 1 1 x", "S k 0 0 1 1 1 1",
        "M k 1", "M k 1 0", "M k 1 4", "M k x 1", "M k 1 1 1", "m k 1 1",
        "S k 4294967296 0 1 1",             /* flags over 32 bits */
        "S k 0 4294967296 1 1",             /* exptime over 32 bits */
        "S k 0 0 18446744073709551616 1",   /* version over 64 bits */
        "S k 0 0 1 1048577",                /* value over -I */
        "S k -1 0 1 1", "S k 0 0 +1 1", "S k 0 0 1 0x1",
        "S  k 0 0 1 1",                     /* empty key (two spaces) */
        "S !!!! 0 0 1 1 b",                 /* not base64 */
        "D k", "D k 1 2", "D", "T k 1", "T k 4294967296 1",
        "F 1", "F 1 4294967296", "F x 1",
        "ACK 1 2", "ACK 1 2 x", "ACK 1 2 3 4 5", "SYNC 1", "SYNC x 1",
        "PSYNC", "PSYNC x", "PING", "RESUME 1 2 3", "PONG", "PONG x",
        "PONG 1 2", "PONG -1", "PING w1 2",
        "NAK", "NAK x", "NAK 1 2", "NAK -1", "RESYNC 1", "DIGEST 1 2 3 4",
        "DIGEST 1 2 3 4 4294967296", "DIGEST x 2 3 4 5", "s k 0 0 1 1 1 1 1",
        "S a b c d e f g h i",              /* more than 8 fields */
    };
    char longkey[KEY_MAX_LENGTH + 16];
    char line[REC_LINE_MAX];
    struct repl_rec r;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(decode_str(bad[i], &r) == -1, "accepted \"%s\"",
                      bad[i]);
    }
    memset(longkey, 'k', KEY_MAX_LENGTH + 1);
    longkey[KEY_MAX_LENGTH + 1] = '\0';
    snprintf(line, sizeof(line), "D %s 1", longkey);
    ck_assert_int_eq(decode_str(line, &r), -1);
    longkey[KEY_MAX_LENGTH] = '\0';     /* 250 bytes: fine */
    snprintf(line, sizeof(line), "D %s 1", longkey);
    ck_assert_int_eq(decode_str(line, &r), 0);
}
END_TEST

/* S and s lines at the edges of what is accepted, whichever decoder
 * path reads them (the one-pass store reader takes numbers of up to 19
 * digits and plain keys; the rest goes to the general one). */
START_TEST(test_store_edges)
{
    static const struct {
        const char *line;
        bool live;
        uint64_t flags, exptime, version, vlen, marks;
    } ok[] = {
        { "S k 0 0 0 0", true, 0, 0, 0, 0, 0 },
        { "s k 0 0 1 1", false, 0, 0, 1, 1, 0 },
        { "S k 4294967295 4294967295 1 1048576 3", true, 4294967295u,
          4294967295u, 1, VLEN_MAX, 3 },
        { "S k 007 0 0000000000000000001 01", true, 7, 0, 1, 1, 0 },
        { "S k 0 0 9999999999999999999 1", true, 0, 0,
          9999999999999999999ull, 1, 0 },
        { "S k 0 0 18446744073709551615 1 0", true, 0, 0, UINT64_MAX, 1,
          0 },
        { "s k 1 2 00000000000000000003 4 2", false, 1, 2, 3, 4, 2 },
        /* 8 digits at a time, then one by one */
        { "S k 12345678 99999999 1234567890123456 1048576", true, 12345678,
          99999999, 1234567890123456ull, VLEN_MAX, 0 },
        { "S k 1234567890 0 12345678901234567 00001234", true,
          1234567890, 0, 12345678901234567ull, 1234, 0 },
        { "S k 0 0 1888888888888888888 9", true, 0, 0,
          1888888888888888888ull, 9, 0 },
    };
    static const char *const bad[] = {
        "S k 0 0 1 1 ", "S k 0 0 1  1", "S k 0 0  1 1", "S k  0 0 1 1",
        "S k 0 0 1 1048577 0", "S k 4294967296 0 1 1 1", "S k 0 0 1 1 04",
        "S k 0 0 1 1 1 ", "S k 0 0 1", "S k 0 0 1 1a", "S k 0 0 1a 1",
        "S k 0 0 184467440737095516150 1", "S k 0 0 1 1\r", "s k\t 0 0",
        "S k 0 0 1 99999999999999999999",
        "S k 0 0 1234567:901234567 1", "S k 0 0 12345678/ 1",
        "S k 0 0 123456789012345/ 1", "S k 0 0 1234567\x80 1",
        "S k 0 0 12345678901234567890123 1",
    };
    char longkey[KEY_MAX_LENGTH + 2];
    char line[REC_LINE_MAX];
    struct repl_rec r;
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        memset(&r, 0x5a, sizeof(r));
        ck_assert_msg(decode_str(ok[i].line, &r) == 0, "refused \"%s\"",
                      ok[i].line);
        ck_assert_int_eq(r.type, REC_STORE);
        ck_assert_int_eq(r.live, ok[i].live);
        ck_assert(!r.b64 && !r.binary);
        ck_assert_uint_eq(r.nkey, 1);
        ck_assert_mem_eq(r.key, "k", 1);
        ck_assert_uint_eq(r.flags, ok[i].flags);
        ck_assert_uint_eq(r.exptime, ok[i].exptime);
        ck_assert_uint_eq(r.version, ok[i].version);
        ck_assert_uint_eq(r.vlen, ok[i].vlen);
        ck_assert_uint_eq(r.marks, ok[i].marks);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(decode_str(bad[i], &r) == -1, "accepted \"%s\"",
                      bad[i]);
    }
    memset(longkey, 'k', KEY_MAX_LENGTH);
    longkey[KEY_MAX_LENGTH] = '\0';        /* 250 bytes: fine */
    snprintf(line, sizeof(line), "S %s 1 2 3 4", longkey);
    ck_assert_int_eq(decode_str(line, &r), 0);
    ck_assert_uint_eq(r.nkey, KEY_MAX_LENGTH);
    ck_assert_ptr_eq(r.key, line + 2);
    ck_assert_uint_eq(r.vlen, 4);
    longkey[KEY_MAX_LENGTH] = 'k';
    longkey[KEY_MAX_LENGTH + 1] = '\0';
    snprintf(line, sizeof(line), "S %s 1 2 3 4", longkey);
    ck_assert_int_eq(decode_str(line, &r), -1);
    /* A one-letter key that is also a key marker's letter. */
    ck_assert_int_eq(decode_str("S b 0 0 1 1", &r), 0);
    ck_assert_uint_eq(r.nkey, 1);
    ck_assert_int_eq(r.key[0], 'b');
    ck_assert(!r.b64);
}
END_TEST

START_TEST(test_parse_u64_edges)
{
    uint64_t v;

    ck_assert(repl_parse_u64("0", 1, &v));
    ck_assert_uint_eq(v, 0);
    ck_assert(repl_parse_u64("18446744073709551615", 20, &v));
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert(!repl_parse_u64("18446744073709551616", 20, &v));
    ck_assert(!repl_parse_u64("99999999999999999999", 20, &v));
    ck_assert(!repl_parse_u64("000000000000000000001", 21, &v));
    ck_assert(!repl_parse_u64("", 0, &v));
    ck_assert(!repl_parse_u64("1 ", 2, &v));
    ck_assert(!repl_parse_u64("-1", 2, &v));
}
END_TEST

START_TEST(test_peek_store_hash)
{
    static const char rec[] = "S key 0 0 1 1\r\nv\r\n";
    uint32_t hv = 0;

    ck_assert(repl_peek_store_hash(rec, sizeof(rec) - 1, &hv));
    ck_assert_uint_eq(hv, hash("key", 3));
    ck_assert(!repl_peek_store_hash("S a2V5 0 0 1 1 b\r\n", 18, &hv));
    ck_assert(!repl_peek_store_hash("D key 1\r\n", 9, &hv));
    ck_assert(!repl_peek_store_hash("S key 0 0", 9, &hv));   /* no line */
}
END_TEST

/* The byte-by-byte split repl_split() had before memchr: the reference. */
static int ref_split(const char *line, size_t len, struct field *f, int max)
{
    int n = 0;
    size_t i, start = 0;

    for (i = 0; i <= len && n < max; i++) {
        if (i == len || line[i] == ' ') {
            f[n].p = line + start;
            f[n].len = i - start;
            n++;
            start = i + 1;
        }
    }
    return (i <= len) ? -1 : n;
}

/* Random lines of letters and spaces (runs of spaces, leading, trailing,
 * empty) split into 0..9 fields: the same count and fields. */
START_TEST(test_split_matches_reference)
{
    static const char alphabet[] = "ab  ";
    char line[24];
    unsigned seed = 7;
    int n;

    for (n = 0; n < 100000; n++) {
        struct field f[10], g[10];
        size_t len = (size_t)(rand_r(&seed) % 20), i;
        int max = (int)(rand_r(&seed) % 10);
        int a, b, k;

        for (i = 0; i < len; i++) {
            line[i] = alphabet[rand_r(&seed) % 4];
        }
        a = repl_split(line, len, f, max);
        b = ref_split(line, len, g, max);
        ck_assert_int_eq(a, b);
        for (k = 0; k < a; k++) {
            ck_assert_ptr_eq(f[k].p, g[k].p);
            ck_assert_uint_eq(f[k].len, g[k].len);
        }
    }
}
END_TEST

/* Split a C string (no "\r\n") as auth_line does. */
static int split_str(const char *line, struct field *f)
{
    return repl_split(line, strlen(line), f, 8);
}

START_TEST(test_handshake_lines_round_trip)
{
    char buf[REC_LINE_MAX];
    char hex[65];
    struct field f[8];
    struct repl_hello h = { 7, 255, 1796000000123ULL, 1048576, 67108864,
                            true };
    struct repl_hello h2;
    struct repl_resume r;
    size_t n;
    int nf;

    memset(hex, 'a', 64);
    hex[64] = '\0';
    n = repl_fmt_pair(buf, 3, hex);
    ck_assert_uint_eq(n, 5 + 2 + 64 + 2);
    ck_assert(strncmp(buf_str(buf, n), "PAIR 3 aaaa", 11) == 0);
    nf = repl_split(buf, n - 2, f, 8);
    ck_assert_int_eq(nf, 3);
    ck_assert(repl_field_is(&f[0], "PAIR"));
    ck_assert(repl_field_hex64(&f[2]));

    n = repl_fmt_version_refused(buf, 3);
    ck_assert_str_eq(buf_str(buf, n),
                     "ERROR replication protocol 3 required\r\n");

    n = repl_fmt_auth(buf, "none");
    ck_assert_str_eq(buf_str(buf, n), "AUTH none\r\n");

    n = repl_fmt_hello(buf, &h);
    ck_assert_str_eq(buf_str(buf, n),
                     "HELLO 7 255 1796000000123 1048576 67108864 1\r\n");
    nf = repl_split(buf, n - 2, f, 8);
    ck_assert(repl_parse_hello(f, nf, &h2));
    ck_assert_uint_eq(h2.run_id, 7);
    ck_assert_uint_eq(h2.node_id, 255);
    ck_assert_uint_eq(h2.wall_ms, 1796000000123ULL);
    ck_assert_uint_eq(h2.item_size_max, 1048576);
    ck_assert_uint_eq(h2.maxbytes, 67108864);
    ck_assert(h2.no_evict);

    n = repl_fmt_resume(buf, UINT64_MAX, 0, 12, 34);
    nf = repl_split(buf, n - 2, f, 8);
    ck_assert(repl_parse_resume(f, nf, &r));
    ck_assert_uint_eq(r.run, UINT64_MAX);
    ck_assert_uint_eq(r.offset, 0);
    ck_assert_uint_eq(r.records, 12);
    ck_assert_uint_eq(r.end, 34);
}
END_TEST

START_TEST(test_handshake_lines_refused)
{
    static const char *const bad_resume[] = {
        "RESUME", "RESUME 1 2", "RESUME 1 2 3", "RESUME 1 2 3 4 5",
        "RESUME -1 2 3 4", "RESUME +1 2 3 4", "RESUME 1 2 3 0x4",
        "RESUME 1  2 3 4", "RESUME 1 2 3 18446744073709551616",
        "resume 1 2 3 4", "RESUMEX 1 2 3 4", "HELLO 1 2 3 4",
    };
    static const char *const bad_hello[] = {
        "HELLO 1 2 3 4 5", "HELLO 1 2 3 4 5 0 0", "HELLO 1 256 3 4 5 0",
        "HELLO 1 2 3 4 5 2", "HELLO 1 2 3 4 5 -1", "HELLO x 2 3 4 5 0",
        "RESUME 1 2 3 4 5 0",
    };
    struct field f[8];
    struct repl_hello h;
    struct repl_resume r;
    size_t i;

    for (i = 0; i < sizeof(bad_resume) / sizeof(bad_resume[0]); i++) {
        int nf = split_str(bad_resume[i], f);
        ck_assert_msg(nf < 0 || !repl_parse_resume(f, nf, &r),
                      "accepted %s", bad_resume[i]);
    }
    for (i = 0; i < sizeof(bad_hello) / sizeof(bad_hello[0]); i++) {
        int nf = split_str(bad_hello[i], f);
        ck_assert_msg(nf < 0 || !repl_parse_hello(f, nf, &h),
                      "accepted %s", bad_hello[i]);
    }
}
END_TEST

/* A NUL as the record letter is no record (strchr used to match it as
 * the end of its letter list; the result was an error either way). */
START_TEST(test_nul_record_letter)
{
    struct repl_rec r;
    const char line[] = "\0 key 0 0 5 3";

    ck_assert_int_eq(repl_decode(line, sizeof(line) - 1, 1024, &r), -1);
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("repl_codec");
    TCase *rt = tcase_create("round trip");
    TCase *bad = tcase_create("malformed");

    tcase_add_test(rt, test_store_round_trip);
    tcase_add_test(rt, test_keys_that_need_base64);
    tcase_add_test(rt, test_meta_marks);
    tcase_add_test(rt, test_delete_touch_flush_round_trip);
    tcase_add_test(rt, test_control_lines);
    tcase_add_test(rt, test_control_lines_round_trip);
    tcase_add_test(rt, test_peek_store_hash);
    tcase_add_test(rt, test_split_matches_reference);
    tcase_add_test(bad, test_nul_record_letter);
    tcase_add_test(rt, test_handshake_lines_round_trip);
    tcase_add_test(bad, test_malformed_lines_refused);
    tcase_add_test(bad, test_parse_u64_edges);
    tcase_add_test(bad, test_handshake_lines_refused);
    tcase_add_test(bad, test_store_edges);
    suite_add_tcase(s, rt);
    suite_add_tcase(s, bad);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
