/*
 * repl_codec.h - the replication stream's text format: encoding the
 * records a node sends (S D T F and the copy's s d f) and decoding every
 * record and control line it receives into a struct repl_rec.  Pure: no
 * globals, no sockets, no storage; doc/replication.txt, "Stream records".
 */
#ifndef REPL_CODEC_H
#define REPL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memcached.h"

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
size_t repl_fmt_store(char *buf, const struct item *it, char op);
size_t repl_fmt_delete(char *buf, char op, const char *key, size_t nkey,
                       bool binary, uint64_t version);
size_t repl_fmt_touch(char *buf, const char *key, size_t nkey, bool binary,
                      uint32_t exptime, uint64_t version);
size_t repl_fmt_flush(char *buf, char op, uint64_t cutoff, uint32_t at);

/* What a received line is. */
enum repl_rec_type {
    REC_STORE,                  /* S, s: an item, data follows */
    REC_DELETE,                 /* D, d: a delete or a tombstone */
    REC_TOUCH,                  /* T: a new deadline */
    REC_FLUSH,                  /* F, f: flush_all */
    REC_PING,                   /* heartbeat with the wall clock */
    REC_ACK,                    /* what the peer applied */
    REC_SYNC,                   /* a full copy starts */
    REC_PSYNC,                  /* the backlog from an offset follows */
    REC_SYNCED                  /* the full copy is complete */
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
    uint64_t at;                /* F: unix time the flush applies */
    bool has_ms;                /* PING: ms parsed */
    uint64_t ms;                /* PING: the peer's wall clock */
    uint64_t bytes;             /* ACK: link bytes applied */
    uint64_t items;             /* ACK: link records; SYNC: items */
    uint64_t offset;            /* ACK: stream offset; SYNC: base; PSYNC */
    uint64_t records;           /* ACK, SYNC: stream records applied */
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
