/*
 * proto_bin.c - memcached's binary protocol: frame parsing, the storage
 * API calls, and replies with memcached 1.6's exact status codes and
 * bodies.  Like proto_text.c it makes no socket calls and never touches
 * the hash table; conn.c moves the bytes and items.c stores them.
 *
 *   request:  24-byte header | extras | key | value
 *   response: 24-byte header | extras | key | value (or error text)
 *
 * Quiet opcodes (…Q) send nothing on success; errors are still sent,
 * except a GETQ/GETKQ/GATQ/GATKQ miss.
 */
#include "memcached.h"
#include "proto_bin.h"
#include "proto.h"
#include "conn.h"
#include "conn_reply.h"
#include "items.h"
#include "items_lru.h"
#include "log.h"
#include "sasl.h"
#include "settings.h"
#include "stats.h"
#include "watch.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t load64(const char *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return be64toh(v);
}

static uint32_t load32(const char *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return ntohl(v);
}

static bool is_quiet(uint8_t op)
{
    switch (op) {
    case BIN_GETQ: case BIN_GETKQ: case BIN_SETQ: case BIN_ADDQ:
    case BIN_REPLACEQ: case BIN_DELETEQ: case BIN_INCREMENTQ:
    case BIN_DECREMENTQ: case BIN_QUITQ: case BIN_FLUSHQ: case BIN_APPENDQ:
    case BIN_PREPENDQ: case BIN_GATQ: case BIN_GATKQ:
        return true;
    default:
        return false;
    }
}

/* --- replies -------------------------------------------------------------- */

/* Queue a response header plus extras and key; `vlen` more bytes of value
 * must follow (queued by the caller). */
static void reply_head(struct conn *c, uint16_t status, const void *extras,
                       uint8_t extlen, const char *key, uint16_t keylen,
                       uint32_t vlen, uint64_t cas)
{
    size_t n = BIN_HDR_LEN + extlen + keylen;
    char *p = conn_out_reserve(c, n);
    uint32_t body = (uint32_t)extlen + keylen + vlen;
    uint16_t k16 = htons(keylen), s16 = htons(status);
    uint32_t b32 = htonl(body);
    uint64_t c64 = htobe64(cas);

    if (p == NULL) {
        conn_close_after_write(c);
        return;
    }
    p[0] = (char)BIN_RES_MAGIC;
    p[1] = (char)c->bin.opcode;
    memcpy(p + 2, &k16, 2);
    p[4] = (char)extlen;
    p[5] = 0;
    memcpy(p + 6, &s16, 2);
    memcpy(p + 8, &b32, 4);
    memcpy(p + 12, &c->bin.opaque, 4);  /* kept in network order */
    memcpy(p + 16, &c64, 8);
    if (extlen > 0) {
        memcpy(p + BIN_HDR_LEN, extras, extlen);
    }
    if (keylen > 0) {
        memcpy(p + BIN_HDR_LEN + extlen, key, keylen);
    }
    conn_out_commit(c, n);
}

static void reply_ok(struct conn *c, uint64_t cas)
{
    if (!is_quiet(c->bin.opcode)) {
        reply_head(c, BIN_OK, NULL, 0, NULL, 0, 0, cas);
    }
}

static const char *status_text(uint16_t status)
{
    switch (status) {
    case BIN_ENOMEM:
        return "Out of memory";
    case BIN_UNKNOWN_COMMAND:
        return "Unknown command";
    case BIN_KEY_ENOENT:
        return "Not found";
    case BIN_EINVAL:
        return "Invalid arguments";
    case BIN_KEY_EEXISTS:
        return "Data exists for key.";
    case BIN_E2BIG:
        return "Too large.";
    case BIN_DELTA_BADVAL:
        return "Non-numeric server-side value for incr or decr";
    case BIN_NOT_STORED:
        return "Not stored.";
    case BIN_AUTH_ERROR:
        return "Auth failure.";
    default:
        return "UNHANDLED ERROR";
    }
}

/* An error reply (sent even for quiet opcodes), then drop `swallow`
 * bytes of input. */
static void reply_error(struct conn *c, uint16_t status, size_t swallow)
{
    const char *text = status_text(status);
    size_t len = strlen(text);

    if (status != BIN_KEY_ENOENT && status != BIN_KEY_EEXISTS &&
        status != BIN_NOT_STORED) {
        STAT_INCR(client_errors);
    }
    reply_head(c, status, NULL, 0, NULL, 0, (uint32_t)len, 0);
    conn_out(c, text, len);
    if (swallow > 0) {
        conn_start_swallow(c, swallow);
    }
}

void proto_bin_peer_failed(struct conn *c)
{
    reply_error(c, BIN_ENOMEM, 0);
}

/* A malformed frame: EINVAL, then close, as memcached does. */
static void protocol_error(struct conn *c)
{
    reply_error(c, BIN_EINVAL, 0);
    conn_close_after_write(c);
}

/* --- retrieval -------------------------------------------------------------- */

static void process_get(struct conn *c, const char *key, uint16_t nkey,
                        const char *extras)
{
    uint8_t op = c->bin.opcode;
    bool touch = op == BIN_TOUCH || op == BIN_GAT || op == BIN_GATQ ||
                 op == BIN_GATK || op == BIN_GATKQ;
    bool with_key = op == BIN_GETK || op == BIN_GETKQ || op == BIN_GATK ||
                    op == BIN_GATKQ;
    enum get_result why;
    struct item *it;

    if (touch) {
        uint32_t exptime = load32(extras);
        it = item_touch(key, nkey,
                        util_deadline((int32_t)exptime, current_time,
                                      process_started), &why);
    } else {
        it = item_get(key, nkey, &why);
    }
    proto_count_get(it, why, touch);
    if (watch_mask & WATCH_FETCHERS) {
        watch_fetch(key, nkey, it, it ? "found" : "not_found", c->sfd);
    }
    if (it == NULL) {
        if (is_quiet(op)) {
            return;
        }
        if (with_key) {
            reply_head(c, BIN_KEY_ENOENT, NULL, 0, key, nkey, 0, 0);
        } else {
            reply_error(c, BIN_KEY_ENOENT, 0);
        }
        return;
    }
    {
        uint32_t flags = htonl(it->flags);
        uint32_t vlen = op == BIN_TOUCH ? 0 : it->nbytes - 2;
        reply_head(c, BIN_OK, &flags, 4, with_key ? key : NULL,
                   with_key ? nkey : 0, vlen, item_cas(it));
        if (vlen > 0) {
            conn_out_value(c, it, vlen);
        } else {
            item_remove(it);
        }
    }
}

/* --- storage -------------------------------------------------------------- */

static enum store_mode store_mode_of(uint8_t op, uint64_t cas)
{
    switch (op) {
    case BIN_ADD: case BIN_ADDQ:
        return STORE_MODE_ADD;
    case BIN_REPLACE: case BIN_REPLACEQ:
        return cas ? STORE_MODE_CAS : STORE_MODE_REPLACE;
    case BIN_APPEND: case BIN_APPENDQ:
        return STORE_MODE_APPEND;
    case BIN_PREPEND: case BIN_PREPENDQ:
        return STORE_MODE_PREPEND;
    default:
        return cas ? STORE_MODE_CAS : STORE_MODE_SET;
    }
}

static void process_update(struct conn *c, const char *key, uint16_t nkey,
                           const char *extras, uint32_t vlen)
{
    uint32_t flags = 0, exptime = 0;
    enum alloc_result why;
    enum store_mode mode = store_mode_of(c->bin.opcode, c->bin.cas);
    struct item *it;

    if (c->bin.extlen == 8) {
        flags = load32(extras);
        exptime = load32(extras + 4);
    }
    it = item_alloc(key, nkey, flags,
                    util_deadline((int32_t)exptime, current_time,
                                  process_started), (size_t)vlen + 2, &why);
    if (it == NULL) {
        if (why == ALLOC_TOO_LARGE) {
            STAT_INCR(store_too_large);
            reply_error(c, BIN_E2BIG, vlen);
        } else {
            STAT_INCR(store_no_memory);
            reply_error(c, BIN_ENOMEM, vlen);
        }
        /* A failed set must not leave the old value readable. */
        if (mode == STORE_MODE_SET) {
            bool exists;
            item_delete(key, nkey, 0, &exists);
        }
        return;
    }
    item_value_write(it, vlen, "\r\n", 2);
    conn_start_nread(c, it, mode, c->bin.cas, is_quiet(c->bin.opcode));
    c->nr.left = vlen;
}

void proto_bin_complete_nread(struct conn *c)
{
    struct item *it = c->nr.it;
    enum store_mode mode = c->nr.mode;
    uint64_t cas = c->nr.cas;
    enum store_result r;

    c->nr.it = NULL;
    if (watch_mask & WATCH_FETCHERS) {
        watch_fetch_peek(ITEM_key(it), it->nkey, c->sfd);
    }
    r = item_store(it, mode, &cas);
    if (watch_mask & WATCH_MUTATIONS) {
        watch_store_item(it, mode, r, c->sfd);
    }
    SLAB_STAT_INCR(it->slabs_clsid, set_cmds);
    proto_count_cas(it->slabs_clsid, mode, r);
    switch (r) {
    case STORE_STORED:
        reply_ok(c, cas);
        break;
    case STORE_EXISTS:
        reply_error(c, BIN_KEY_EEXISTS, 0);
        break;
    case STORE_NOT_FOUND:
        reply_error(c, BIN_KEY_ENOENT, 0);
        break;
    case STORE_NOT_STORED:
        if (mode == STORE_MODE_ADD) {
            reply_error(c, BIN_KEY_EEXISTS, 0);
        } else if (mode == STORE_MODE_REPLACE) {
            reply_error(c, BIN_KEY_ENOENT, 0);
        } else {
            reply_error(c, BIN_NOT_STORED, 0);
        }
        break;
    case STORE_NO_MEMORY:
        reply_error(c, BIN_ENOMEM, 0);
        break;
    }
    item_remove(it);
}

/* --- other key commands ------------------------------------------------------ */

static void process_delete(struct conn *c, const char *key, uint16_t nkey)
{
    bool exists;
    unsigned clsid;

    stats_detail_delete(key, nkey);
    if (item_delete_cls(key, nkey, c->bin.cas, &exists, &clsid)) {
        SLAB_STAT_INCR(clsid, delete_hits);
        reply_ok(c, 0);
    } else if (exists) {
        reply_error(c, BIN_KEY_EEXISTS, 0);
    } else {
        STAT_INCR(delete_misses);
        reply_error(c, BIN_KEY_ENOENT, 0);
    }
}


static void process_arith(struct conn *c, const char *key, uint16_t nkey,
                          const char *extras)
{
    bool incr = c->bin.opcode == BIN_INCREMENT ||
                c->bin.opcode == BIN_INCREMENTQ;
    uint64_t delta = load64(extras);
    uint64_t initial = load64(extras + 8);
    uint32_t exptime = load32(extras + 16);
    char buf[MAX_NUMBER_LEN + 1];
    uint64_t value = 0, cas = c->bin.cas;
    enum delta_result r;
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        cas = c->bin.cas;
        r = item_delta(key, nkey, incr, delta, &value, buf, &cas);
        if (r != DELTA_NOT_FOUND || c->bin.cas != 0) {
            break;
        }
        if (exptime == 0xffffffffU) {
            break;
        }
        /* Lost a race with another creator: count on its value. */
        r = item_create_counter(key, nkey, initial,
                                util_deadline((int32_t)exptime, current_time,
                                              process_started), &cas);
        if (r == DELTA_OK) {
            value = initial;
            break;
        }
    }
    switch (r) {
    case DELTA_OK:
        if (!is_quiet(c->bin.opcode)) {
            uint64_t be = htobe64(value);
            reply_head(c, BIN_OK, NULL, 0, NULL, 0, 8, cas);
            conn_out(c, (const char *)&be, 8);
        }
        break;
    case DELTA_NON_NUMERIC:
        reply_error(c, BIN_DELTA_BADVAL, 0);
        break;
    case DELTA_NO_MEMORY:
        reply_error(c, BIN_ENOMEM, 0);
        break;
    case DELTA_EXISTS:
    case DELTA_SUPERSEDED:      /* changed since the request arrived */
        reply_error(c, BIN_KEY_EEXISTS, 0);
        break;
    case DELTA_NOT_FOUND:
        if (incr) {
            STAT_INCR(incr_misses);
        } else {
            STAT_INCR(decr_misses);
        }
        reply_error(c, BIN_KEY_ENOENT, 0);
        break;
    }
}

/* --- server commands ----------------------------------------------------------- */

/* Send each "STAT name value\r\n" line of sb as one key/value packet,
 * then the empty terminator. */
static void reply_stats(struct conn *c, struct strbuf *sb)
{
    char *p = sb->buf;
    char *end = p != NULL ? p + sb->len : NULL;     /* "reset": no buf */

    while (p != NULL && p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        char *name, *val, *line_end;
        if (eol == NULL) {
            break;
        }
        line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        name = p + 5;           /* after "STAT " */
        val = memchr(name, ' ', (size_t)(line_end - name));
        if (strncmp(p, "STAT ", 5) == 0 && val != NULL) {
            reply_head(c, BIN_OK, NULL, 0, name, (uint16_t)(val - name),
                       (uint32_t)(line_end - val - 1), 0);
            conn_out(c, val + 1, (size_t)(line_end - val - 1));
        }
        p = eol + 1;
    }
    reply_head(c, BIN_OK, NULL, 0, NULL, 0, 0, 0);
    sb_free(sb);
}

/* "detail on", "detail off", "detail dump": as the text protocol's
 * `stats detail`; a dump comes as one "detailed" stat holding the PREFIX
 * lines, as memcached sends it.  Takes over sb. */
static void process_stat_detail(struct conn *c, const char *arg, size_t n,
                                struct strbuf *sb)
{
    if (n == 3 && memcmp(arg, " on", 3) == 0) {
        settings.detail_enabled = true;
    } else if (n == 4 && memcmp(arg, " off", 4) == 0) {
        settings.detail_enabled = false;
    } else if (n == 5 && memcmp(arg, " dump", 5) == 0) {
        stats_detail_dump(sb);
        if (sb->oom) {
            sb_free(sb);
            reply_error(c, BIN_ENOMEM, 0);
            return;
        }
        reply_head(c, BIN_OK, NULL, 0, "detailed", 8, (uint32_t)sb->len, 0);
        conn_out(c, sb->buf, sb->len);
        sb_free(sb);
        sb_init(sb);
    } else {
        sb_free(sb);
        reply_error(c, BIN_KEY_ENOENT, 0);
        return;
    }
    reply_stats(c, sb);
}

static void process_stat(struct conn *c, const char *key, uint16_t nkey)
{
    struct strbuf sb;

    sb_init(&sb);
    if (nkey == 0) {
        stats_general(&sb);
    } else if (nkey == 5 && memcmp(key, "reset", 5) == 0) {
        stats_reset();
    } else if (nkey == 8 && memcmp(key, "settings", 8) == 0) {
        stats_settings(&sb);
    } else if (nkey == 5 && memcmp(key, "items", 5) == 0) {
        items_stats(&sb);
    } else if (nkey == 5 && memcmp(key, "slabs", 5) == 0) {
        stats_slabs(&sb);
    } else if (nkey == 5 && memcmp(key, "sizes", 5) == 0) {
        items_stats_sizes(&sb);
    } else if (nkey == 5 && memcmp(key, "conns", 5) == 0) {
        conn_stats(&sb, c);
    } else if (nkey == 6 && memcmp(key, "extras", 6) == 0) {
        stats_extras(&sb);
    } else if (nkey >= 6 && memcmp(key, "detail", 6) == 0) {
        process_stat_detail(c, key + 6, nkey - 6, &sb);
        return;
    } else {
        sb_free(&sb);
        reply_error(c, BIN_KEY_ENOENT, 0);
        return;
    }
    if (sb.oom) {
        sb_free(&sb);
        reply_error(c, BIN_ENOMEM, 0);
        return;
    }
    reply_stats(c, &sb);
}

static void process_flush(struct conn *c, const char *extras)
{
    uint32_t when = 0;

    STAT_INCR(flush_cmds);
    if (!settings.flush_enabled) {
        reply_error(c, BIN_AUTH_ERROR, 0);
        return;
    }
    if (c->bin.extlen == 4) {
        uint32_t delay = load32(extras);
        if (delay > 0) {
            when = util_deadline((int32_t)delay, current_time,
                                 process_started);
        }
    }
    /* Unlike text flush_all, memcached's binary FLUSH leaves the memory
     * to be reclaimed lazily; so do we (curr_items drops on access). */
    item_flush(when);
    reply_ok(c, 0);
}

/*
 * SASL as memcached does it: LIST_MECHS, AUTH and STEP each drop an
 * earlier authentication of the connection; AUTH starts an exchange
 * (sasl.c: Cyrus SASL, so any mechanism it offers), STEP continues one
 * that AUTH started and has not ended.  auth_cmds counts each exchange
 * that ends, auth_errors each that ends refused; a mechanism name over
 * SASL_MECH_MAX bytes is EINVAL and not counted.
 */
static void sasl_reply(struct conn *c, enum sasl_result r, const char *out,
                       unsigned outlen)
{
    static const char ok[] = "Authenticated";

    switch (r) {
    case SASL_RES_OK:
        c->authenticated = true;
        c->sasl_step = false;
        STAT_INCR(auth_cmds);
        reply_head(c, BIN_OK, NULL, 0, NULL, 0, sizeof(ok) - 1, 0);
        conn_out(c, ok, sizeof(ok) - 1);
        break;
    case SASL_RES_CONTINUE:
        c->sasl_step = true;
        reply_head(c, BIN_AUTH_CONTINUE, NULL, 0, NULL, 0, outlen, 0);
        if (outlen > 0) {
            conn_out(c, out, outlen);
        }
        break;
    default:
        c->sasl_step = false;
        STAT_INCR(auth_cmds);
        STAT_INCR(auth_errors);
        reply_error(c, BIN_AUTH_ERROR, 0);
        break;
    }
}

static void process_sasl(struct conn *c, const char *key, uint16_t nkey,
                         const char *data, uint32_t dlen)
{
    const char *out = NULL;
    unsigned outlen = 0;
    enum sasl_result r;

    c->authenticated = false;
    if (c->bin.opcode == BIN_SASL_LIST_MECHS) {
        if (sasl_conn_mechs(&c->sasl, &out, &outlen) != 0) {
            reply_error(c, BIN_AUTH_ERROR, 0);
            return;
        }
        reply_head(c, BIN_OK, NULL, 0, NULL, 0, outlen, 0);
        conn_out(c, out, outlen);
        return;
    }
    if (nkey > SASL_MECH_MAX) {
        reply_error(c, BIN_EINVAL, 0);
        return;
    }
    if (c->bin.opcode == BIN_SASL_AUTH) {
        r = sasl_conn_start(&c->sasl, key, nkey, data, dlen, &out, &outlen);
    } else if (c->sasl_step) {
        r = sasl_conn_step(&c->sasl, data, dlen, &out, &outlen);
    } else {
        log_info("<%d SASL_STEP without an AUTH", c->sfd);
        r = SASL_RES_FAIL;
    }
    sasl_reply(c, r, out, outlen);
}

/* --- framing ------------------------------------------------------------------ */

/* Check extras/key/body lengths for the opcode; false = malformed. */
static bool frame_ok(const struct bin_req *r)
{
    uint32_t kx = (uint32_t)r->keylen + r->extlen;

    switch (r->opcode) {
    case BIN_VERSION: case BIN_NOOP: case BIN_QUIT: case BIN_QUITQ:
    case BIN_SASL_LIST_MECHS:
        return r->extlen == 0 && r->keylen == 0 && r->bodylen == 0;
    case BIN_FLUSH: case BIN_FLUSHQ:
        return r->keylen == 0 && r->bodylen == r->extlen &&
               (r->extlen == 0 || r->extlen == 4);
    case BIN_SET: case BIN_SETQ: case BIN_ADD: case BIN_ADDQ:
    case BIN_REPLACE: case BIN_REPLACEQ:
        return r->extlen == 8 && r->keylen != 0 && r->bodylen >= kx;
    case BIN_GET: case BIN_GETQ: case BIN_GETK: case BIN_GETKQ:
        return r->extlen == 0 && r->keylen > 0 && r->bodylen == r->keylen;
    case BIN_DELETE: case BIN_DELETEQ:
        return r->keylen > 0 && r->extlen == 0 && r->bodylen == r->keylen;
    case BIN_INCREMENT: case BIN_INCREMENTQ: case BIN_DECREMENT:
    case BIN_DECREMENTQ:
        return r->keylen > 0 && r->extlen == 20 && r->bodylen == kx;
    case BIN_APPEND: case BIN_APPENDQ: case BIN_PREPEND: case BIN_PREPENDQ:
        return r->keylen > 0 && r->extlen == 0;
    case BIN_STAT:
        return r->extlen == 0 && r->bodylen == r->keylen;
    case BIN_SASL_AUTH: case BIN_SASL_STEP:
        return r->extlen == 0 && r->keylen != 0;
    case BIN_TOUCH: case BIN_GAT: case BIN_GATQ: case BIN_GATK:
    case BIN_GATKQ:
        return r->extlen == 4 && r->keylen != 0 && r->bodylen == kx;
    case BIN_VERBOSITY:
        return r->extlen == 4 && r->keylen == 0 && r->bodylen == 4;
    default:
        return true;
    }
}

static bool is_storage(uint8_t op)
{
    switch (op) {
    case BIN_SET: case BIN_SETQ: case BIN_ADD: case BIN_ADDQ:
    case BIN_REPLACE: case BIN_REPLACEQ: case BIN_APPEND: case BIN_APPENDQ:
    case BIN_PREPEND: case BIN_PREPENDQ:
        return true;
    default:
        return false;
    }
}

/* memcached 1.6 has no binary VERBOSITY.  The SASL opcodes are known
 * (their frames are checked) but answer UNKNOWN_COMMAND without -S. */
static bool is_known(uint8_t op)
{
    return op <= BIN_GATKQ && op != 0x1f && op != BIN_VERBOSITY;
}

/* Run a request whose fixed part (and for non-storage, whole body) is at
 * p.  Storage commands continue in CONN_NREAD for their value. */
static void dispatch(struct conn *c, const char *p)
{
    const struct bin_req *r = &c->bin;
    const char *extras = p;
    const char *key = p + r->extlen;
    uint32_t vlen = r->bodylen - r->keylen - r->extlen;

    switch (r->opcode) {
    case BIN_GET: case BIN_GETQ: case BIN_GETK: case BIN_GETKQ:
    case BIN_TOUCH: case BIN_GAT: case BIN_GATQ: case BIN_GATK:
    case BIN_GATKQ:
        process_get(c, key, r->keylen, extras);
        break;
    case BIN_SET: case BIN_SETQ: case BIN_ADD: case BIN_ADDQ:
    case BIN_REPLACE: case BIN_REPLACEQ: case BIN_APPEND: case BIN_APPENDQ:
    case BIN_PREPEND: case BIN_PREPENDQ:
        process_update(c, key, r->keylen, extras, vlen);
        break;
    case BIN_DELETE: case BIN_DELETEQ:
        process_delete(c, key, r->keylen);
        break;
    case BIN_INCREMENT: case BIN_INCREMENTQ: case BIN_DECREMENT:
    case BIN_DECREMENTQ:
        process_arith(c, key, r->keylen, extras);
        break;
    case BIN_QUIT: case BIN_QUITQ:
        reply_ok(c, 0);
        conn_quit(c);
        break;
    case BIN_FLUSH: case BIN_FLUSHQ:
        process_flush(c, extras);
        break;
    case BIN_NOOP:
        reply_ok(c, 0);
        break;
    case BIN_VERSION:
        reply_head(c, BIN_OK, NULL, 0, NULL, 0,
                   (uint32_t)strlen(SERVER_VERSION), 0);
        conn_out_str(c, SERVER_VERSION);
        break;
    case BIN_STAT:
        process_stat(c, key, r->keylen);
        break;
    case BIN_SASL_LIST_MECHS: case BIN_SASL_AUTH: case BIN_SASL_STEP:
        if (!settings.sasl) {
            reply_error(c, BIN_UNKNOWN_COMMAND, 0);
        } else {
            process_sasl(c, key, r->keylen, key + r->keylen, vlen);
        }
        break;
    default:
        break;
    }
}

#define BIN_AUTH_BODY_MAX 1024    /* mechanism name and credentials */

static bool auth_exempt(uint8_t op)
{
    return op == BIN_SASL_LIST_MECHS || op == BIN_SASL_AUTH ||
           op == BIN_SASL_STEP || op == BIN_VERSION;
}

enum proto_result proto_bin_process(struct conn *c)
{
    const unsigned char *h = (const unsigned char *)c->rcurr;
    struct bin_req *r = &c->bin;
    size_t need;

    if (c->rbytes < BIN_HDR_LEN) {
        return PROTO_NEED_MORE;
    }
    if (h[0] != BIN_REQ_MAGIC) {
        log_debug("<%d invalid binary magic 0x%02x", c->sfd, h[0]);
        return PROTO_CLOSE;
    }
    r->opcode = h[1];
    r->keylen = (uint16_t)(h[2] << 8 | h[3]);
    r->extlen = h[4];
    r->bodylen = load32(c->rcurr + 8);
    memcpy(&r->opaque, c->rcurr + 12, 4);
    r->cas = load64(c->rcurr + 16);
    c->noreply = false;

    if ((uint32_t)r->keylen + r->extlen > r->bodylen) {
        reply_error(c, BIN_UNKNOWN_COMMAND, 0);
        conn_close_after_write(c);
        c->rcurr += BIN_HDR_LEN;
        c->rbytes -= BIN_HDR_LEN;
        return PROTO_CLOSE;
    }
    /* Before SASL succeeds a connection may only authenticate, with a
     * small body: it cannot make us buffer a large frame. */
    if (settings.sasl && !c->authenticated &&
        (!auth_exempt(r->opcode) || r->bodylen > BIN_AUTH_BODY_MAX)) {
        if (auth_exempt(r->opcode)) {
            STAT_INCR(auth_errors);
        }
        reply_error(c, BIN_AUTH_ERROR, 0);
        conn_close_after_write(c);
        return PROTO_CLOSE;
    }
    if (!is_known(r->opcode)) {
        c->rcurr += BIN_HDR_LEN;
        c->rbytes -= BIN_HDR_LEN;
        reply_error(c, BIN_UNKNOWN_COMMAND, r->bodylen);
        return PROTO_DONE;
    }
    if (r->keylen > KEY_MAX_LENGTH || !frame_ok(r)) {
        c->rcurr += BIN_HDR_LEN;
        c->rbytes -= BIN_HDR_LEN;
        protocol_error(c);
        return PROTO_CLOSE;
    }
    /* Buffer the fixed part; storage values are read into the item. */
    need = BIN_HDR_LEN + r->extlen + r->keylen;
    if (!is_storage(r->opcode)) {
        need = BIN_HDR_LEN + (size_t)r->bodylen;
    }
    if (need > TEXT_GETLINE_MAX) {
        protocol_error(c);
        return PROTO_CLOSE;
    }
    if (c->rbytes < need) {
        return PROTO_NEED_MORE;
    }
    c->rcurr += need;
    c->rbytes -= need;
    dispatch(c, c->rcurr - need + BIN_HDR_LEN);
    return c->close_after_write ? PROTO_CLOSE : PROTO_DONE;
}
