/*
 * util.c - parsing and time helpers with no state of their own except the
 * process clock (current_time, process_started).
 */
#include "memcached.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

volatile uint32_t current_time;
uint32_t process_started;

/* isspace() in the C locale (the server never calls setlocale), without
 * a call to __ctype_b_loc per character. */
static inline bool is_space(unsigned char c)
{
    return c == ' ' || (unsigned)(c - '\t') < 5;     /* \t \n \v \f \r */
}

/* A token ends at NUL or white space; anything else after the digits is
 * garbage and fails the parse. */
static inline bool ends_cleanly(const char *end)
{
    return *end == '\0' || is_space((unsigned char)*end);
}

/*
 * Decimal integers as strtoull/strtoll read them in base 10 (leading
 * white space, one optional sign, digits; ERANGE past the type), without
 * their locale machinery: every text set parses three numbers, and
 * strtol cost ~130 instructions each where this costs a few per digit.
 * *neg tells the sign; *mag is the magnitude, saturated at UINT64_MAX
 * with *over set when it does not fit.  Returns where the digits end,
 * or NULL when there are none.  19 digits always fit in 64 bits, so
 * only longer numbers pay for the overflow check.
 */
static inline const char *parse_dec(const char *s, bool *neg, uint64_t *mag,
                                    bool *over)
{
    uint64_t v = 0;
    const char *d;

    while (is_space((unsigned char)*s)) {
        s++;
    }
    *neg = *s == '-';
    if (*s == '-' || *s == '+') {
        s++;
    }
    *over = false;
    for (d = s; (unsigned)(*d - '0') < 10 && d - s < 19; d++) {
        v = v * 10 + (unsigned)(*d - '0');
    }
    for (; (unsigned)(*d - '0') < 10; d++) {
        unsigned digit = (unsigned)(*d - '0');
        if (*over || v > (UINT64_MAX - digit) / 10) {
            *over = true;
            v = UINT64_MAX;
        } else {
            v = v * 10 + digit;
        }
    }
    *mag = v;
    return d == s ? NULL : d;
}

/* The checks of strtoull and strtoll behind the four parsers, inlined
 * into each (the 32-bit ones are the set command's). */
static inline bool parse_u64(const char *str, uint64_t *out)
{
    const char *end;
    bool neg, over;

    end = parse_dec(str, &neg, out, &over);
    /* strtoull accepts "-1" and wraps it; a sign makes no sense here. */
    return end != NULL && !over && !neg && ends_cleanly(end);
}

static inline bool parse_s64(const char *str, int64_t *out)
{
    const char *end;
    uint64_t v;
    bool neg, over;

    end = parse_dec(str, &neg, &v, &over);
    if (end == NULL || over || !ends_cleanly(end) ||
        v > (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
        return false;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool safe_strtoull(const char *str, uint64_t *out)
{
    uint64_t v;

    if (!parse_u64(str, &v)) {
        return false;
    }
    *out = v;
    return true;
}

bool safe_strtoul(const char *str, uint32_t *out)
{
    uint64_t v;

    if (!parse_u64(str, &v) || v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

bool safe_strtoll(const char *str, int64_t *out)
{
    int64_t v;

    if (!parse_s64(str, &v)) {
        return false;
    }
    *out = v;
    return true;
}

bool safe_strtol(const char *str, int32_t *out)
{
    int64_t v;

    if (!parse_s64(str, &v) || v > INT32_MAX || v < INT32_MIN) {
        return false;
    }
    *out = (int32_t)v;
    return true;
}

bool safe_strtod(const char *str, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(str, &end);
    if (errno == ERANGE || end == str || !ends_cleanly(end)) {
        return false;
    }
    *out = v;
    return true;
}

uint32_t util_deadline(int64_t exptime, uint32_t now, uint32_t started)
{
    if (exptime == 0) {
        return 0;
    }
    if (exptime < 0) {
        return 1;
    }
    if (exptime > REALTIME_MAXDELTA) {
        if (exptime <= (int64_t)started) {
            return 1;
        }
        if (exptime > UINT32_MAX) {
            return UINT32_MAX;
        }
        return (uint32_t)exptime;
    }
    return now + (uint32_t)exptime;
}

int64_t util_ttl_left(uint32_t deadline, uint32_t now)
{
    if (deadline == 0) {
        return -1;
    }
    if (deadline <= now) {
        return -1;
    }
    return (int64_t)deadline - now;
}

uint64_t util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t util_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Give the CPU to a thread woken meanwhile, at most once per
 * YIELD_EVERY_US: a kernel that preempts lazily lets a task that stays in
 * user space run on until its next tick (4 ms at HZ=250), even when a
 * worker was woken by a request.  *last is the caller's own record. */
#define YIELD_EVERY_US 1000
void util_preempt_point(uint64_t *last)
{
    uint64_t now = util_mono_us();

    if (now - *last >= YIELD_EVERY_US) {
        sched_yield();
        *last = util_mono_us();
    }
}

/* Only a test build's `debugtime` changes these (main thread, or a
 * worker: a torn read is a second off for one tick, in a test). */
static volatile int64_t clock_shift;
static volatile bool clock_paused;

void util_clock_tick(void)
{
    struct timeval tv;

    if (clock_paused) {
        return;
    }
    gettimeofday(&tv, NULL);
    current_time = (uint32_t)(tv.tv_sec + clock_shift);
}

void util_clock_shift(int64_t delta)
{
    clock_shift += delta;
    current_time = (uint32_t)((int64_t)current_time + delta);
}

void util_clock_pause(bool paused)
{
    clock_paused = paused;
}

void util_clock_init(void)
{
    util_clock_tick();
    /* memcached starts its clock ITEM_UPDATE_INTERVAL + 2 seconds in the
     * past; keep the same boundary for absolute expiry times. */
    process_started = current_time - ITEM_UPDATE_INTERVAL - 2;
}

/* Two digits per step from a 200-byte table: the reply path formats
 * flags, lengths and CAS values for every hit. */
static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

/* Digits are written in place from the end, their count found first
 * (no scratch copy): flags 0 and a length of a few digits are the common
 * case; replication formats 19-digit versions. */
int util_u64toa(uint64_t v, char *buf)
{
    static const uint64_t pow10[MAX_NUMBER_LEN] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
        10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
        100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL,
        10000000000000000000ULL,
    };
    int n, t;
    char *p;

    if (v < 10) {
        buf[0] = (char)('0' + v);
        buf[1] = '\0';
        return 1;
    }
    /* log10 from the bit length (1233 / 4096 ~ log10(2)), corrected by
     * one comparison: no loop, even for a 19-digit version. */
    t = ((64 - __builtin_clzll(v)) * 1233) >> 12;
    n = t + 1 - (v < pow10[t]);
    p = buf + n;
    *p = '\0';
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        p[0] = digit_pairs[r * 2];
        p[1] = digit_pairs[r * 2 + 1];
    }
    if (v >= 10) {
        p -= 2;
        p[0] = digit_pairs[v * 2];
        p[1] = digit_pairs[v * 2 + 1];
    } else {
        *--p = (char)('0' + v);
    }
    return n;
}

void sb_init(struct strbuf *sb)
{
    sb->buf = NULL;
    sb->len = 0;
    sb->cap = 0;
    sb->oom = false;
}

void sb_free(struct strbuf *sb)
{
    free(sb->buf);
    sb_init(sb);
}

/* Grow a malloc'd buffer *p of *cap bytes to hold need bytes, doubling
 * from first; false when out of memory (then *p is unchanged).  The one
 * growth rule of both buffers below. */
static bool buf_grow(char **p, size_t *cap, size_t need, size_t first)
{
    size_t c = *cap ? *cap : first;
    char *np;

    if (need <= *cap) {
        return true;
    }
    while (c < need) {
        c *= 2;
    }
    np = realloc(*p, c);
    if (np == NULL) {
        return false;
    }
    *p = np;
    *cap = c;
    return true;
}

static bool sb_reserve(struct strbuf *sb, size_t more)
{
    if (sb->oom) {
        return false;
    }
    if (!buf_grow(&sb->buf, &sb->cap, sb->len + more + 1, 1024)) {
        sb->oom = true;
        return false;
    }
    return true;
}

void sb_append(struct strbuf *sb, const char *data, size_t len)
{
    if (!sb_reserve(sb, len)) {
        return;
    }
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

static void sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !sb_reserve(sb, (size_t)n)) {
        return;
    }
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sb_vprintf(sb, fmt, ap);
    va_end(ap);
}

void sb_stat(struct strbuf *sb, const char *name, const char *fmt, ...)
{
    va_list ap;

    sb_printf(sb, "STAT %s ", name);
    va_start(ap, fmt);
    sb_vprintf(sb, fmt, ap);
    va_end(ap);
    sb_append(sb, "\r\n", 2);
}

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char ch)
{
    const char *p;

    if (ch == '\0') {
        return -1;
    }
    p = strchr(b64_chars, ch);
    return p == NULL ? -1 : (int)(p - b64_chars);
}

int util_b64_decode(const char *in, size_t inlen, char *out, size_t outlen)
{
    size_t i, n = 0;

    if (inlen == 0 || inlen % 4 != 0) {
        return -1;
    }
    for (i = 0; i < inlen; i += 4) {
        int v[4], k, pad = 0;
        for (k = 0; k < 4; k++) {
            if (in[i + k] == '=' && i + 4 == inlen && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad > 0 || (v[k] = b64_value(in[i + k])) < 0) {
                return -1;
            }
        }
        if (n + 3 - (size_t)pad > outlen) {
            return -1;
        }
        out[n++] = (char)(v[0] << 2 | v[1] >> 4);
        if (pad < 2) {
            out[n++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
        }
        if (pad < 1) {
            out[n++] = (char)((v[2] & 3) << 6 | v[3]);
        }
    }
    return (int)n;
}

void util_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t util_url_encode(const char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
            ch == '_' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = digits[ch >> 4];
            out[o++] = digits[ch & 15];
        }
    }
    out[o] = '\0';
    return o;
}

int util_b64_encode(const char *in, size_t inlen, char *out)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i;
    int n = 0;

    for (i = 0; i + 2 < inlen; i += 3) {
        out[n++] = b64_chars[p[i] >> 2];
        out[n++] = b64_chars[(p[i] & 3) << 4 | p[i + 1] >> 4];
        out[n++] = b64_chars[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
        out[n++] = b64_chars[p[i + 2] & 63];
    }
    if (i < inlen) {
        out[n++] = b64_chars[p[i] >> 2];
        if (i + 1 < inlen) {
            out[n++] = b64_chars[(p[i] & 3) << 4 | p[i + 1] >> 4];
            out[n++] = b64_chars[(p[i + 1] & 15) << 2];
        } else {
            out[n++] = b64_chars[(p[i] & 3) << 4];
            out[n++] = '=';
        }
        out[n++] = '=';
    }
    out[n] = '\0';
    return n;
}

int util_addr_name(const struct sockaddr *sa, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, n, "%s:%u", host, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, n, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        snprintf(out, n, "?");
    }
    return sa->sa_family;
}

/* Copy [p, p + n) into out (size bytes) with a NUL: -1 if too long. */
static int copy_part(const char *p, size_t n, char *out, size_t size)
{
    if (n >= size) {
        return -1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int util_split_host_port(const char *spec, size_t len, char *host,
                         size_t hostlen, char *port, size_t portlen)
{
    const char *end = spec + len, *colon = NULL, *p;
    int colons = 0;

    if (len > 0 && spec[0] == '[') {
        const char *close = memchr(spec, ']', len);
        if (close == NULL ||
            copy_part(spec + 1, (size_t)(close - spec - 1), host,
                      hostlen) != 0) {
            return -1;
        }
        if (close + 1 < end && close[1] == ':') {
            return copy_part(close + 2, (size_t)(end - close - 2), port,
                             portlen);
        }
        return 0;
    }
    for (p = spec; p < end; p++) {
        if (*p == ':') {
            colon = p;
            colons++;
        }
    }
    if (colons != 1) {
        return copy_part(spec, len, host, hostlen);
    }
    if (copy_part(spec, (size_t)(colon - spec), host, hostlen) != 0) {
        return -1;
    }
    return copy_part(colon + 1, (size_t)(end - colon - 1), port, portlen);
}

bool util_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
    }
    return false;
}

/* --- byte buffers --------------------------------------------------------- */

bool rbuf_reserve(struct rbuf *b, size_t more)
{
    return buf_grow(&b->data, &b->cap, b->len + more, 16384);
}

void rbuf_free(struct rbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
