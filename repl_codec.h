/*
 * repl_codec.h - the replication stream's text format: encoding the
 * records (S D T F M, the copy's s d f) and control lines a node sends,
 * and decoding every one it receives into a struct repl_rec.  Pure: no
 * globals, no sockets, no storage; doc/replication.txt, "Stream records".
 */
#ifndef REPL_CODEC_H
#define REPL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memcached.h"
#include "util.h"

#include <string.h>

#define REC_LINE_MAX 1024           /* longest record header or line */

struct item;

/* One space-separated field of a line. */
struct field {
    const char *p;              /* first byte */
    size_t len;                 /* bytes */
};

/* Split line[0..len) on single spaces into at most max fields; returns
 * how many, or -1 when there are more than max. */
int repl_split(const char *line, size_t len, struct field *f, int max);
bool repl_field_is(const struct field *f, const char *word);
/* Decimal digits only, no sign, no overflow past 64 bits. */
bool repl_parse_u64(const char *p, size_t len, uint64_t *out);
bool repl_field_u64(const struct field *f, uint64_t *out);
/* 64 lower-case hex digits: a nonce or an HMAC-SHA256. */
bool repl_field_hex64(const struct field *f);

/* Encoders.  buf has REC_LINE_MAX bytes; each returns the bytes written,
 * "\r\n" included.  op is the record letter: 'S' or 's' (a copy), 'D'
 * or 'd', 'F' or 'f'.  An S record's data (it->nbytes, with its own
 * "\r\n") follows the header on the wire. */
size_t repl_fmt_delete(char *buf, char op, const char *key, size_t nkey,
                       bool binary, uint64_t version);
size_t repl_fmt_touch(char *buf, const char *key, size_t nkey, bool binary,
                      uint32_t exptime, uint64_t version);
size_t repl_fmt_flush(char *buf, char op, uint64_t cutoff, uint32_t at);
/* M: the item of this version got these marks (REPL_MARK_*). */
size_t repl_fmt_marks(char *buf, const char *key, size_t nkey, bool binary,
                      uint64_t version, unsigned marks);

/* Control lines, one encoder each (the same buffer rule; decoded by
 * repl_decode, except RESUME, read by repl_parse_resume below).  PING: our
 * wall clock in ms.  ACK: link bytes and records applied, then the
 * peer's stream offset and records applied.  NAK: the stream offset
 * after the record we could not store.  RESUME: the peer's run id,
 * stream offset and records we applied (0s when none), and where our
 * own stream ends.  SYNC: items in the copy, the stream offset and
 * records the live stream goes on from.  PSYNC: the offset the backlog
 * is sent from.  SYNCED: items sent in the copy.  DIGEST: the sum, its
 * items, records fed and applied, and the unix time it holds to.
 * PING w<n> asks the peer for PONG <n> at once, queued behind every
 * record it has sent so far (a node woken from a stall learns it is
 * caught up in one round trip); an older peer reads it as a PING
 * without a clock and ignores it. */
size_t repl_fmt_ping(char *buf, uint64_t ms);
size_t repl_fmt_ping_ask(char *buf, uint64_t serial);
size_t repl_fmt_pong(char *buf, uint64_t serial);
size_t repl_fmt_ack(char *buf, uint64_t bytes, uint64_t items,
                    uint64_t offset, uint64_t records);
size_t repl_fmt_nak(char *buf, uint64_t offset);
size_t repl_fmt_resume(char *buf, uint64_t run, uint64_t offset,
                       uint64_t records, uint64_t end);
size_t repl_fmt_sync(char *buf, uint64_t items, uint64_t offset,
                     uint64_t records);
size_t repl_fmt_psync(char *buf, uint64_t offset);
size_t repl_fmt_synced(char *buf, uint64_t items);
size_t repl_fmt_digest(char *buf, uint64_t sum, uint64_t items,
                       uint64_t records, uint64_t applied, uint32_t at);
size_t repl_fmt_resync(char *buf);

/* The handshake (doc/replication.txt, "Handshake"), one line each:
 * PAIR <protocol version> <nonce>; the refusal sent to a peer speaking
 * another version; AUTH <proof> (64 hex digits, or "none" without a
 * secret); HELLO, what a node tells a peer that proved the secret; and
 * RESUME, where it asks the stream to go on from.  The parsers take the
 * line split by repl_split and are strict: the exact field count,
 * decimal digits only, no sign, no overflow. */
struct repl_hello {
    uint64_t run_id;            /* the sender's run id */
    uint64_t node_id;           /* its node id, 0..255 */
    uint64_t wall_ms;           /* its wall clock, ms since the epoch */
    uint64_t item_size_max;     /* its -I */
    uint64_t maxbytes;          /* its -m, bytes */
    bool no_evict;              /* its -M */
};

struct repl_resume {
    uint64_t run;               /* the peer run id we applied from, or 0 */
    uint64_t offset;            /* its stream offset we applied up to */
    uint64_t records;           /* records we applied */
    uint64_t end;               /* where our own stream ends */
};

size_t repl_fmt_pair(char *buf, unsigned version, const char *nonce);
size_t repl_fmt_version_refused(char *buf, unsigned version);
size_t repl_fmt_auth(char *buf, const char *proof);
size_t repl_fmt_hello(char *buf, const struct repl_hello *h);
bool repl_parse_hello(const struct field *f, int nf, struct repl_hello *h);
bool repl_parse_resume(const struct field *f, int nf,
                       struct repl_resume *r);

/* The encoders' pieces, and the store encoder, are inline: the mutation
 * hook formats a record on every write (repl_stream.c), and a call per
 * piece cost it about 90 instructions. */
static inline bool repl_key_is_plain(const char *key, size_t nkey)
{
    size_t i;

    for (i = 0; i < nkey; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch <= 0x20 || ch == 0x7f) {
            return false;
        }
    }
    return true;
}

static inline char *repl_put_u64(char *p, uint64_t v)
{
    return p + util_u64toa(v, p);
}

/* Write "<op> <key>" into p; returns the end and sets *mark to the key
 * marker to append at the end of the line (" b", " B" or ""). */
static inline char *repl_put_key(char *p, char op, const char *key,
                                 size_t nkey, bool binary, const char **mark)
{
    *p++ = op;
    *p++ = ' ';
    if (!binary && repl_key_is_plain(key, nkey)) {
        memcpy(p, key, nkey);
        *mark = "";
        return p + nkey;
    }
    *mark = binary ? " B" : " b";
    return p + util_b64_encode(key, nkey, p);
}

/* The key marker, then "\r\n": the end of every keyed line. */
static inline size_t repl_put_end(char *buf, char *p, const char *mark)
{
    size_t n = strlen(mark);

    memcpy(p, mark, n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - buf);
}

/* An item's meta marks on the wire: 1 stale (ms I, md I), 2 a recache
 * token was handed out (W). */
#define REPL_MARK_STALE 1
#define REPL_MARK_TOKEN 2
static inline unsigned repl_marks_of(const struct item *it)
{
    return ((it->it_flags & ITEM_STALE) ? REPL_MARK_STALE : 0) |
           ((it->it_flags & ITEM_TOKEN_SENT) ? REPL_MARK_TOKEN : 0);
}

/* The header of an S (or a copy's s) record for it: a sixth field with
 * its marks only when it has some. */
static inline size_t repl_fmt_store(char *buf, const struct item *it,
                                    char op)
{
    const char *mark;
    char *p = repl_put_key(buf, op, ITEM_key(it), it->nkey,
                           (it->it_flags & ITEM_KEY_BINARY) != 0, &mark);

    *p++ = ' ';
    p = repl_put_u64(p, it->flags);
    *p++ = ' ';
    p = repl_put_u64(p, it->exptime);
    *p++ = ' ';
    p = repl_put_u64(p, it->version);
    *p++ = ' ';
    p = repl_put_u64(p, it->nbytes - 2);
    if (__builtin_expect((it->it_flags & (ITEM_STALE | ITEM_TOKEN_SENT))
                         != 0, 0)) {
        *p++ = ' ';
        *p++ = (char)('0' + repl_marks_of(it));
    }
    return repl_put_end(buf, p, mark);
}

/* What a received line is. */
enum repl_rec_type {
    REC_STORE,                  /* S, s: an item, data follows */
    REC_DELETE,                 /* D, d: a delete or a tombstone */
    REC_TOUCH,                  /* T: a new deadline */
    REC_FLUSH,                  /* F, f: flush_all */
    REC_MARKS,                  /* M: meta marks of one version */
    REC_PING,                   /* heartbeat with the wall clock, or
                                   (PING w<n>) a request for a PONG */
    REC_PONG,                   /* the answer to PING w<n> */
    REC_ACK,                    /* what the peer applied */
    REC_SYNC,                   /* a full copy starts */
    REC_PSYNC,                  /* the backlog from an offset follows */
    REC_SYNCED,                 /* the full copy is complete */
    REC_NAK,                    /* the peer could not store a record */
    REC_DIGEST,                 /* the peer's digest, to compare */
    REC_RESYNC                  /* the digests differ: resync in full */
};

/* A decoded line.  key points into the line, or into keybuf for a key
 * that travelled in base64. */
struct repl_rec {
    enum repl_rec_type type;
    bool live;                  /* S D T F: counts in the stream offset */
    bool b64;                   /* the key travelled in base64 */
    bool binary;                /* ... as the client gave it (meta b) */
    const char *key;            /* S D T */
    size_t nkey;
    uint64_t flags;             /* S */
    uint64_t exptime;           /* S T: deadline */
    uint64_t version;           /* S D T; F: the cutoff */
    uint64_t vlen;              /* S: data bytes after the line */
    uint64_t marks;             /* S M: REPL_MARK_* (0 when absent) */
    uint64_t at;                /* F: unix time the flush applies;
                                   DIGEST: items alive through it */
    uint64_t sum;               /* DIGEST: the sum */
    uint64_t applied;           /* DIGEST: our records the peer applied */
    bool has_ms;                /* PING: ms parsed */
    uint64_t ms;                /* PING: the peer's wall clock */
    bool ask;                   /* PING w<n>: answer PONG <n> */
    uint64_t serial;            /* PING w<n>, PONG: n */
    uint64_t bytes;             /* ACK: link bytes applied */
    uint64_t items;             /* ACK: link records; SYNC, DIGEST: items */
    uint64_t offset;            /* ACK: stream offset; SYNC: base; PSYNC;
                                   NAK: the offset after the record */
    uint64_t records;           /* ACK, SYNC: stream records applied;
                                   DIGEST: the peer's records fed */
    char keybuf[KEY_MAX_LENGTH + 1];
};

/* Decode line[0..len) (no "\r\n") into r: 0, or -1 when it does not
 * parse (an unknown verb, a bad number or key, the wrong field count, an
 * S whose length is over vlen_max). */
int repl_decode(const char *line, size_t len, uint64_t vlen_max,
                struct repl_rec *r);

/* The hash of the key of the store record at p, if one is there whole
 * and its key is plain: a prefetch hint, so any doubt is a no. */
bool repl_peek_store_hash(const char *p, size_t avail, uint32_t *hv);

#endif
