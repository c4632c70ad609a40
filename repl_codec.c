/*
 * repl_codec.c - encode and decode the replication stream's records and
 * control lines (doc/replication.txt, "Stream records").  Pure functions
 * of their arguments: no globals, no I/O, no storage.  What a record
 * means, and whether to apply it, is repl_apply.c's business.
 */
#include "repl_codec.h"
#include "hash.h"
#include "items.h"

#include <stdio.h>
#include <string.h>

/* --- fields -------------------------------------------------------------- */

bool repl_parse_u64(const char *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0 || len > 20) {
        return false;
    }
    /* 19 digits never overflow; only a 20th needs checking. */
    for (i = 0; i < len && i < 19; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (d > 9) {
            return false;
        }
        v = v * 10 + d;
    }
    if (len == 20) {
        unsigned d = (unsigned)(p[19] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Fields are found with memchr (a store record's line is ~100 bytes in
 * 7 fields: a loop over every byte cost ~500 instructions a record on
 * the receiving node). */
int repl_split(const char *line, size_t len, struct field *f, int max)
{
    const char *p = line;
    const char *end = line + len;
    int n = 0;

    for (;;) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (n == max) {
            return -1;          /* more fields than max */
        }
        f[n].p = p;
        if (sp == NULL) {
            f[n].len = (size_t)(end - p);
            return n + 1;
        }
        f[n].len = (size_t)(sp - p);
        n++;
        p = sp + 1;
    }
}

bool repl_field_is(const struct field *f, const char *word)
{
    size_t n = strlen(word);
    return f->len == n && memcmp(f->p, word, n) == 0;
}

bool repl_field_u64(const struct field *f, uint64_t *out)
{
    return repl_parse_u64(f->p, f->len, out);
}

bool repl_field_hex64(const struct field *f)
{
    size_t i;

    if (f->len != 64) {
        return false;
    }
    for (i = 0; i < 64; i++) {
        char c = f->p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* --- encoding ---------------------------------------------------------------
 * Keys with bytes a text line cannot carry travel in base64; " b" marks
 * that, " B" also marks a key the client gave in base64 (meta b).  The
 * hook encodes one record per write: no snprintf.
 */
size_t repl_fmt_delete(char *buf, char op, const char *key, size_t nkey,
                       bool binary, uint64_t version)
{
    const char *mark;
    char *p = repl_put_key(buf, op, key, nkey, binary, &mark);

    *p++ = ' ';
    p = repl_put_u64(p, version);
    return repl_put_end(buf, p, mark);
}

size_t repl_fmt_touch(char *buf, const char *key, size_t nkey, bool binary,
                      uint32_t exptime, uint64_t version)
{
    const char *mark;
    char *p = repl_put_key(buf, 'T', key, nkey, binary, &mark);

    *p++ = ' ';
    p = repl_put_u64(p, exptime);
    *p++ = ' ';
    p = repl_put_u64(p, version);
    return repl_put_end(buf, p, mark);
}

size_t repl_fmt_flush(char *buf, char op, uint64_t cutoff, uint32_t at)
{
    char *p = buf;

    *p++ = op;
    *p++ = ' ';
    p = repl_put_u64(p, cutoff);
    *p++ = ' ';
    p = repl_put_u64(p, at);
    return repl_put_end(buf, p, "");
}

size_t repl_fmt_marks(char *buf, const char *key, size_t nkey, bool binary,
                      uint64_t version, unsigned marks)
{
    const char *mark;
    char *p = repl_put_key(buf, 'M', key, nkey, binary, &mark);

    *p++ = ' ';
    p = repl_put_u64(p, version);
    *p++ = ' ';
    p = repl_put_u64(p, marks);
    return repl_put_end(buf, p, mark);
}

/* --- control lines ------------------------------------------------------- */

/* "<verb>", then " <v>" for each of the n values, then "\r\n". */
static size_t put_ctl(char *buf, const char *verb, const uint64_t *v,
                      int n)
{
    size_t len = strlen(verb);
    char *p = buf;
    int i;

    memcpy(p, verb, len);
    p += len;
    for (i = 0; i < n; i++) {
        *p++ = ' ';
        p = repl_put_u64(p, v[i]);
    }
    return repl_put_end(buf, p, "");
}

size_t repl_fmt_ping(char *buf, uint64_t ms)
{
    return put_ctl(buf, "PING", &ms, 1);
}

size_t repl_fmt_ping_ask(char *buf, uint64_t serial)
{
    char *p = buf;

    memcpy(p, "PING w", 6);
    p = repl_put_u64(p + 6, serial);
    return repl_put_end(buf, p, "");
}

size_t repl_fmt_pong(char *buf, uint64_t serial)
{
    return put_ctl(buf, "PONG", &serial, 1);
}

size_t repl_fmt_ack(char *buf, uint64_t bytes, uint64_t items,
                    uint64_t offset, uint64_t records)
{
    const uint64_t v[] = { bytes, items, offset, records };

    return put_ctl(buf, "ACK", v, 4);
}

size_t repl_fmt_nak(char *buf, uint64_t offset)
{
    return put_ctl(buf, "NAK", &offset, 1);
}

size_t repl_fmt_resume(char *buf, uint64_t run, uint64_t offset,
                       uint64_t records, uint64_t end)
{
    const uint64_t v[] = { run, offset, records, end };

    return put_ctl(buf, "RESUME", v, 4);
}

size_t repl_fmt_sync(char *buf, uint64_t items, uint64_t offset,
                     uint64_t records)
{
    const uint64_t v[] = { items, offset, records };

    return put_ctl(buf, "SYNC", v, 3);
}

size_t repl_fmt_psync(char *buf, uint64_t offset)
{
    return put_ctl(buf, "PSYNC", &offset, 1);
}

size_t repl_fmt_synced(char *buf, uint64_t items)
{
    return put_ctl(buf, "SYNCED", &items, 1);
}

size_t repl_fmt_digest(char *buf, uint64_t sum, uint64_t items,
                       uint64_t records, uint64_t applied, uint32_t at)
{
    const uint64_t v[] = { sum, items, records, applied, at };

    return put_ctl(buf, "DIGEST", v, 5);
}

size_t repl_fmt_resync(char *buf)
{
    return put_ctl(buf, "RESYNC", NULL, 0);
}

/* --- the handshake ------------------------------------------------------- */

/* "<verb> <word>\r\n"; word is at most 64 characters (a nonce, a proof). */
static size_t put_word(char *buf, const char *verb, const char *word)
{
    int n = snprintf(buf, REC_LINE_MAX, "%s %.64s\r\n", verb, word);

    return n > 0 ? (size_t)n : 0;
}

size_t repl_fmt_pair(char *buf, unsigned version, const char *nonce)
{
    int n = snprintf(buf, REC_LINE_MAX, "PAIR %u %.64s\r\n", version,
                     nonce);

    return n > 0 ? (size_t)n : 0;
}

size_t repl_fmt_version_refused(char *buf, unsigned version)
{
    int n = snprintf(buf, REC_LINE_MAX,
                     "ERROR replication protocol %u required\r\n", version);

    return n > 0 ? (size_t)n : 0;
}

size_t repl_fmt_auth(char *buf, const char *proof)
{
    return put_word(buf, "AUTH", proof);
}

size_t repl_fmt_hello(char *buf, const struct repl_hello *h)
{
    const uint64_t v[] = { h->run_id, h->node_id, h->wall_ms,
                           h->item_size_max, h->maxbytes, h->no_evict };

    return put_ctl(buf, "HELLO", v, 6);
}

/* f[1..n] as n numbers into v; false unless all are plain decimals. */
static bool fields_u64(const struct field *f, int n, uint64_t *v)
{
    int i;

    for (i = 0; i < n; i++) {
        if (!repl_field_u64(&f[i + 1], &v[i])) {
            return false;
        }
    }
    return true;
}

bool repl_parse_hello(const struct field *f, int nf, struct repl_hello *h)
{
    uint64_t v[6];

    if (nf != 7 || !repl_field_is(&f[0], "HELLO") || !fields_u64(f, 6, v) ||
        v[1] > 0xFF || v[5] > 1) {
        return false;
    }
    h->run_id = v[0];
    h->node_id = v[1];
    h->wall_ms = v[2];
    h->item_size_max = v[3];
    h->maxbytes = v[4];
    h->no_evict = v[5] == 1;
    return true;
}

bool repl_parse_resume(const struct field *f, int nf, struct repl_resume *r)
{
    uint64_t v[4];

    if (nf != 5 || !repl_field_is(&f[0], "RESUME") || !fields_u64(f, 4, v)) {
        return false;
    }
    r->run = v[0];
    r->offset = v[1];
    r->records = v[2];
    r->end = v[3];
    return true;
}

/* --- decoding ---------------------------------------------------------------
 * One function per shape; each gets the fields after the key marker is
 * taken off.  Anything unexpected is -1: the caller closes the link.
 */

/* f[1] is a key, plain or (mark) base64. */
static int decode_key(const struct field *f, int nf, const struct field *mark,
                      struct repl_rec *r)
{
    if (nf < 2 || f[1].len == 0) {
        return -1;
    }
    r->b64 = mark != NULL;
    r->binary = mark != NULL && mark->p[0] == 'B';
    if (mark == NULL) {
        if (f[1].len > KEY_MAX_LENGTH) {
            return -1;
        }
        r->key = f[1].p;
        r->nkey = f[1].len;
        return 0;
    }
    {
        int n = util_b64_decode(f[1].p, f[1].len, r->keybuf, KEY_MAX_LENGTH);
        if (n <= 0) {
            return -1;
        }
        r->key = r->keybuf;
        r->nkey = (size_t)n;
    }
    return 0;
}

static int decode_data(char op, const struct field *f, int nf,
                       uint64_t vlen_max, struct repl_rec *r)
{
    switch (op) {
    case 'S': case 's':
        r->type = REC_STORE;
        /* No item can be larger than -I: a broken peer must not make us
         * wait for, or buffer, gigabytes. */
        r->marks = 0;
        return (nf == 6 || (nf == 7 && repl_field_u64(&f[6], &r->marks) &&
                            r->marks <= 3)) &&
               repl_field_u64(&f[2], &r->flags) &&
               repl_field_u64(&f[3], &r->exptime) &&
               repl_field_u64(&f[4], &r->version) &&
               repl_field_u64(&f[5], &r->vlen) && r->flags <= UINT32_MAX &&
               r->exptime <= UINT32_MAX && r->vlen <= vlen_max ? 0 : -1;
    case 'M':
        r->type = REC_MARKS;
        return nf == 4 && repl_field_u64(&f[2], &r->version) &&
               repl_field_u64(&f[3], &r->marks) && r->marks >= 1 &&
               r->marks <= 3 ? 0 : -1;
    case 'D': case 'd':
        r->type = REC_DELETE;
        return nf == 3 && repl_field_u64(&f[2], &r->version) ? 0 : -1;
    case 'T':
        r->type = REC_TOUCH;
        return nf == 4 && repl_field_u64(&f[2], &r->exptime) &&
               repl_field_u64(&f[3], &r->version) &&
               r->exptime <= UINT32_MAX ? 0 : -1;
    case 'F': case 'f':
        r->type = REC_FLUSH;
        return nf == 3 && repl_field_u64(&f[1], &r->version) &&
               repl_field_u64(&f[2], &r->at) && r->at <= UINT32_MAX ? 0 : -1;
    default:
        return -1;
    }
}

static int decode_control(const struct field *f, int nf, struct repl_rec *r)
{
    if (repl_field_is(&f[0], "PING") && nf == 2) {
        r->type = REC_PING;
        r->has_ms = repl_field_u64(&f[1], &r->ms);
        r->ask = false;
        if (!r->has_ms && f[1].len > 1 && f[1].p[0] == 'w') {
            struct field n = { f[1].p + 1, f[1].len - 1 };
            r->ask = repl_field_u64(&n, &r->serial);
        }
        return 0;
    }
    if (repl_field_is(&f[0], "PONG") && nf == 2) {
        r->type = REC_PONG;
        return repl_field_u64(&f[1], &r->serial) ? 0 : -1;
    }
    if (repl_field_is(&f[0], "ACK") && (nf == 4 || nf == 5)) {
        r->type = REC_ACK;
        if (!repl_field_u64(&f[1], &r->bytes) ||
            !repl_field_u64(&f[2], &r->items) ||
            !repl_field_u64(&f[3], &r->offset)) {
            return -1;
        }
        r->records = r->items;      /* an older peer sent no records */
        return nf == 5 && !repl_field_u64(&f[4], &r->records) ? -1 : 0;
    }
    if (repl_field_is(&f[0], "SYNC") && (nf == 3 || nf == 4)) {
        r->type = REC_SYNC;
        r->records = 0;
        return repl_field_u64(&f[1], &r->items) &&
               repl_field_u64(&f[2], &r->offset) &&
               (nf == 3 || repl_field_u64(&f[3], &r->records)) ? 0 : -1;
    }
    if (repl_field_is(&f[0], "PSYNC") && nf == 2) {
        r->type = REC_PSYNC;
        return repl_field_u64(&f[1], &r->offset) ? 0 : -1;
    }
    if (repl_field_is(&f[0], "NAK") && nf == 2) {
        r->type = REC_NAK;
        return repl_field_u64(&f[1], &r->offset) ? 0 : -1;
    }
    if (repl_field_is(&f[0], "DIGEST") && nf == 6) {
        r->type = REC_DIGEST;
        return repl_field_u64(&f[1], &r->sum) &&
               repl_field_u64(&f[2], &r->items) &&
               repl_field_u64(&f[3], &r->records) &&
               repl_field_u64(&f[4], &r->applied) &&
               repl_field_u64(&f[5], &r->at) && r->at <= UINT32_MAX ? 0 : -1;
    }
    if (repl_field_is(&f[0], "RESYNC") && nf == 1) {
        r->type = REC_RESYNC;
        return 0;
    }
    if (repl_field_is(&f[0], "SYNCED")) {
        r->type = REC_SYNCED;
        return 0;
    }
    return -1;
}

/*
 * The record nearly every line is: "S|s <plain key> <flags> <exptime>
 * <version> <len>[ <marks>]", read in one pass.  Splitting it into
 * fields and parsing each field again cost the receiver about 1,000
 * instructions a record, a third of what applying a replicated 1 KB set
 * costs it.  Returns true when the line had exactly that shape and every
 * value is within its bounds, with r filled as decode_data() fills it;
 * false for anything else (a key marker, a 20-digit number, an empty
 * field, a bound exceeded), which then goes to the general decoder: it
 * decides what such a line is, and refuses it if it is wrong.
 */
#define FAST_MAX_DIGITS 19      /* never overflows 64 bits */
static bool decode_store_fast(const char *line, size_t len,
                              uint64_t vlen_max, struct repl_rec *r)
{
    const char *p = line + 2, *end = line + len, *sp;
    uint64_t v[5];
    int n = 0;

    if (len < 4 || (line[0] != 'S' && line[0] != 's') || line[1] != ' ') {
        return false;
    }
    sp = memchr(p, ' ', (size_t)(end - p));
    if (sp == NULL || sp == p || sp - p > KEY_MAX_LENGTH) {
        return false;
    }
    r->key = p;
    r->nkey = (size_t)(sp - p);
    p = sp + 1;
    for (;;) {
        const char *first = p;
        const char *lim = end - p > FAST_MAX_DIGITS ? p + FAST_MAX_DIGITS
                                                    : end;
        uint64_t x = 0;
        unsigned d;

        while (p < lim && (d = (unsigned)(unsigned char)*p - '0') <= 9) {
            x = x * 10 + d;
            p++;
        }
        if (p == first || n == 5 || (p < end && *p != ' ')) {
            return false;
        }
        v[n++] = x;
        if (p == end) {
            break;
        }
        if (++p == end) {
            return false;       /* a trailing space: an empty field */
        }
    }
    if (n < 4 || v[0] > UINT32_MAX || v[1] > UINT32_MAX || v[3] > vlen_max ||
        (n == 5 && v[4] > 3)) {
        return false;
    }
    r->type = REC_STORE;
    r->live = line[0] == 'S';
    r->b64 = r->binary = false;
    r->flags = v[0];
    r->exptime = v[1];
    r->version = v[2];
    r->vlen = v[3];
    r->marks = n == 5 ? v[4] : 0;
    return true;
}

/* Record letters as bits (a test instead of a strchr, which would also
 * have matched a NUL): keyed ones, the peer's own stream's, and every
 * data record's. */
#define OP_BIT(c) \
    ((c) >= 'a' ? 1ULL << ((c) - 'a' + 26) : 1ULL << ((c) - 'A'))
#define OPS_KEYED (OP_BIT('S') | OP_BIT('D') | OP_BIT('T') | OP_BIT('M') | \
                   OP_BIT('s') | OP_BIT('d'))
#define OPS_LIVE (OP_BIT('S') | OP_BIT('D') | OP_BIT('T') | OP_BIT('F') | \
                  OP_BIT('M'))
#define OPS_DATA (OPS_LIVE | OP_BIT('s') | OP_BIT('d') | OP_BIT('f'))

static inline bool op_in(char c, uint64_t set)
{
    return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) &&
           (set & OP_BIT(c)) != 0;
}

int repl_decode(const char *line, size_t len, uint64_t vlen_max,
                struct repl_rec *r)
{
    struct field f[8];
    const struct field *mark = NULL;
    int nf;
    bool keyed;

    if (decode_store_fast(line, len, vlen_max, r)) {
        return 0;
    }
    nf = repl_split(line, len, f, 8);
    if (nf <= 0) {
        return -1;
    }
    keyed = f[0].len == 1 && op_in(f[0].p[0], OPS_KEYED);
    if (keyed && nf > 2 &&
        (repl_field_is(&f[nf - 1], "b") || repl_field_is(&f[nf - 1], "B"))) {
        mark = &f[--nf];
    }
    /* Upper case: a record of the peer's stream, counted in its offset;
     * lower case: the same record from a full copy, not counted. */
    r->live = f[0].len == 1 && op_in(f[0].p[0], OPS_LIVE);
    r->b64 = r->binary = false;
    r->key = NULL;
    r->nkey = 0;
    if (keyed && decode_key(f, nf, mark, r) != 0) {
        return -1;
    }
    if (f[0].len == 1 && op_in(f[0].p[0], OPS_DATA)) {
        return decode_data(f[0].p[0], f, nf, vlen_max, r);
    }
    return decode_control(f, nf, r);
}

bool repl_peek_store_hash(const char *p, size_t avail, uint32_t *hv)
{
    const char *k, *end, *eol;

    if (avail < 4 || (p[0] != 'S' && p[0] != 's') || p[1] != ' ') {
        return false;
    }
    eol = memchr(p, '\n', avail > REC_LINE_MAX ? REC_LINE_MAX : avail);
    if (eol == NULL || eol[-1] == 'b' || eol[-1] == 'B' ||
        (eol[-1] == '\r' && (eol[-2] == 'b' || eol[-2] == 'B'))) {
        return false;           /* base64 key: not worth decoding twice */
    }
    k = p + 2;
    end = memchr(k, ' ', (size_t)(eol - k));
    if (end == NULL || end == k || end - k > KEY_MAX_LENGTH) {
        return false;
    }
    *hv = hash(k, (size_t)(end - k));
    return true;
}
