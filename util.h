/*
 * util.h - number parsing with memcached's rules, expiry conversion, and
 * the clock.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* Parse a whole token.  Leading blanks are allowed, trailing garbage is
 * not; out-of-range values and negative numbers for unsigned types fail.
 * Return true on success. */
bool safe_strtoull(const char *str, uint64_t *out);
bool safe_strtoul(const char *str, uint32_t *out);
bool safe_strtoll(const char *str, int64_t *out);
bool safe_strtol(const char *str, int32_t *out);
bool safe_strtod(const char *str, double *out);

/*
 * Turn a client exptime into an absolute unix deadline, as memcached does:
 * 0 means never; negative means already expired; up to 30 days is relative
 * to now; above that it is an absolute unix time, and one at or before the
 * start of the process is already expired.  An expired deadline is
 * returned as 1 (long past).
 */
uint32_t util_deadline(int64_t exptime, uint32_t now, uint32_t started);

/* The remaining TTL as memcached shows it: -1 never, else seconds. */
int64_t util_ttl_left(uint32_t deadline, uint32_t now);

/* Wall clock, milliseconds since the unix epoch. */
uint64_t util_now_ms(void);
/* Monotonic clock, microseconds. */
uint64_t util_mono_us(void);
/* A preemption point for long background loops (doc/threads.txt, "Yield
 * points"); *last starts at 0. */
void util_preempt_point(uint64_t *last);

/* Refresh current_time from the wall clock (main thread's timer). */
void util_clock_tick(void);
/* Set process_started and current_time at start-up. */
void util_clock_init(void);
/* Test builds' `debugtime` (PAIRCACHED_DEBUG_TIME): move the clock by
 * delta seconds from now on, or pause / resume it. */
void util_clock_shift(int64_t delta);
void util_clock_pause(bool paused);

struct sockaddr;
/* True for 127.0.0.0/8 and ::1. */
bool util_is_loopback(const struct sockaddr *sa);
/* "host:port", or "[v6]:port", of an AF_INET or AF_INET6 address into
 * out (n bytes); "?" for any other family.  Returns sa's family. */
int util_addr_name(const struct sockaddr *sa, char *out, size_t n);
/* Split the first len bytes of "host[:port]" or "[v6][:port]" (a bare v6
 * address has several ':' and no port).  host gets the host, brackets
 * off (maybe ""); port gets the port only when one is given, else it is
 * left as it was.  -1 for a '[' without ']' or a part too long. */
int util_split_host_port(const char *spec, size_t len, char *host,
                         size_t hostlen, char *port, size_t portlen);

/* Write the decimal form of v into buf (>= 21 bytes); return length. */
int util_u64toa(uint64_t v, char *buf);
/* What a read or send that returned n <= 0 (errno err) means. */
enum io_fail {
    IO_FAIL_RETRY,              /* EINTR: try again at once */
    IO_FAIL_WAIT,               /* EAGAIN: wait for the next event */
    IO_FAIL_CLOSED,             /* n == 0: the peer closed */
    IO_FAIL_ERROR               /* any other errno: give up */
};

static inline enum io_fail util_io_fail(ssize_t n, int err)
{
    if (n == 0) {
        return IO_FAIL_CLOSED;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
        return IO_FAIL_WAIT;    /* the common case first */
    }
    return err == EINTR ? IO_FAIL_RETRY : IO_FAIL_ERROR;
}

/* Write n bytes as 2 * n lower-case hex digits and a NUL into out. */
void util_hex(const unsigned char *in, size_t n, char *out);
/* URL-encode a key as memcached prints it (watch, metadump): letters,
 * digits and -._~ as is, any other byte as %XX.  out has 3 * n + 1
 * bytes; returns the length written, NUL not counted. */
size_t util_url_encode(const char *in, size_t n, char *out);



/* Base64 (RFC 4648, with padding).  decode returns the length, or -1 on
 * bad input or when out (outlen bytes) is too small. */
int util_b64_decode(const char *in, size_t inlen, char *out, size_t outlen);
/* encode writes 4 * ceil(inlen / 3) bytes plus a NUL; returns length. */
int util_b64_encode(const char *in, size_t inlen, char *out);

/* A growable text buffer for building multi-line replies (stats). */
struct strbuf {
    char *buf;                  /* malloc'd, NUL terminated when !oom */
    size_t len;                 /* bytes used, without the NUL */
    size_t cap;                 /* bytes allocated */
    bool oom;                   /* an append failed; contents truncated */
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_append(struct strbuf *sb, const char *data, size_t len);
void sb_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append "STAT <name> <value>\r\n"; value formatted with fmt. */
void sb_stat(struct strbuf *sb, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A growable byte buffer for binary streams (the replication link):
 * unlike strbuf, an append that cannot grow it fails and says so, and
 * the caller decides (a resync, a closed link). */
struct rbuf {
    char *data;                 /* malloc'd bytes */
    size_t len;                 /* bytes used */
    size_t cap;                 /* bytes allocated */
};

/* Room for `more` bytes past len; false when out of memory. */
bool rbuf_reserve(struct rbuf *b, size_t more);
void rbuf_free(struct rbuf *b);

/* Append n bytes; false when out of memory.  Inline: the replication
 * hook calls it for every write. */
static inline bool rbuf_add(struct rbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap && !rbuf_reserve(b, n)) {
        return false;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

#endif
