/*
 * proto_meta.c - the meta commands: mg (get), ms (set), md (delete),
 * ma (arithmetic), mn (no-op) and me (debug).  A request is a command, a
 * key and single-letter flags, some with a token ("T30", "Oabc").  Return
 * flags are echoed in the order the request gave them.  Replies and error
 * strings are memcached 1.6.18's.
 *
 *   mg <key> <flags>*              -> HD|VA <len>|EN <flags>*
 *   ms <key> <datalen> <flags>*    -> HD|NS|EX|NF <flags>*
 *   md <key> <flags>*              -> HD|NF|EX <flags>*
 *   ma <key> <flags>*              -> HD|VA <len>|NF|NS|EX <flags>*
 */
#include "memcached.h"
#include "proto_meta.h"
#include "proto.h"
#include "conn.h"
#include "conn_reply.h"
#include "items.h"
#include "settings.h"
#include "stats.h"
#include "util.h"
#include "watch.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_MAX_TOKENS 20      /* command, key, flags, as memcached */
#define OPAQUE_MAX 32           /* "O" and its token */

/* Parsed flags of one meta request. */
struct meta_req {
    char order[META_MAX_TOKENS];    /* flag letters in request order */
    int nflags;                 /* letters in order[] */
    uint64_t seen;              /* bitmap of letters seen (duplicates) */
    bool base64;                /* b */
    bool quiet;                 /* q */
    bool value;                 /* v */
    bool no_bump;               /* u */
    bool invalidate;            /* I */
    const char *opaque;         /* O token (with the O) */
    size_t opaque_len;          /* its length */
    bool has_cas;               /* C */
    uint64_t cas;               /* ... compare CAS */
    bool has_ttl;               /* T */
    int32_t ttl;                /* ... new TTL */
    bool has_vivify;            /* N */
    int32_t vivify_ttl;         /* ... TTL of the created item */
    bool has_recache;           /* R */
    int32_t recache_ttl;        /* ... win below this TTL */
    bool has_flags;             /* F */
    uint32_t client_flags;      /* ... client flags */
    bool has_delta;             /* D */
    uint64_t delta;             /* ... delta */
    bool has_initial;           /* J */
    uint64_t initial;           /* ... initial value */
    char mode;                  /* M: mode letter, 0 if none */
    const char *key;            /* the key: the token, or keybuf */
    size_t nkey;                /* its length */
    const char *key_token;      /* key as sent */
    size_t key_token_len;       /* its length */
    char keybuf[KEY_MAX_LENGTH + 1];    /* decoded base64 key; not
                                           cleared between requests */
};

static const char *const ERR_FORMAT = "CLIENT_ERROR bad command line format";
static const char *const ERR_TOKEN =
    "CLIENT_ERROR bad token in command line format";
static const char *const ERR_FLAG = "CLIENT_ERROR invalid flag";

static void out_line(struct conn *c, const char *s)
{
    conn_out(c, s, strlen(s));
    conn_out(c, "\r\n", 2);
}

static void meta_error(struct conn *c, const char *s)
{
    STAT_INCR(client_errors);
    out_line(c, s);
}

/* Decode the key token (base64 with b); false on a bad key. */
static const char *parse_key(struct meta_req *m, const struct token *t)
{
    m->key_token = t->value;
    m->key_token_len = t->length;
    if (t->length > KEY_MAX_LENGTH) {
        return ERR_FORMAT;
    }
    if (m->base64) {
        int n = util_b64_decode(t->value, t->length, m->keybuf,
                                KEY_MAX_LENGTH);
        if (n <= 0) {
            return "CLIENT_ERROR error decoding key";
        }
        m->key = m->keybuf;
        m->nkey = (size_t)n;
    } else {
        m->key = t->value;
        m->nkey = t->length;
    }
    return NULL;
}

static bool num_token(const char *s, int32_t *out)
{
    return s[0] != '\0' && safe_strtol(s, out);
}

/* A flag letter's bit in meta_req.seen and in the masks below. */
#define FLAG_BIT(f) \
    ((f) >= 'a' ? 1ULL << ((f) - 'a' + 26) : 1ULL << ((f) - 'A'))
#define FB2(a, b) (FLAG_BIT(a) | FLAG_BIT(b))
#define FB4(a, b, c, d) (FB2(a, b) | FB2(c, d))

/* Flags each command accepts, as bits (a mask test instead of a strchr
 * per flag): mg bcfhklOqstuvNRT, ms bcCFIkOqTM, md bCIkOqT,
 * ma bcCNJDTMOqtvk, me b. */
static uint64_t accepted(char cmd)
{
    switch (cmd) {
    case 'g':
        return FB4('b', 'c', 'f', 'h') | FB4('k', 'l', 'O', 'q') |
               FB4('s', 't', 'u', 'v') | FB2('N', 'R') | FLAG_BIT('T');
    case 's':
        return FB4('b', 'c', 'C', 'F') | FB4('I', 'k', 'O', 'q') |
               FB2('T', 'M');
    case 'd':
        return FB4('b', 'C', 'I', 'k') | FB2('O', 'q') | FLAG_BIT('T');
    case 'a':
        return FB4('b', 'c', 'C', 'N') | FB4('J', 'D', 'T', 'M') |
               FB4('O', 'q', 't', 'v') | FLAG_BIT('k');
    case 'e':
        return FLAG_BIT('b');
    default:
        return 0;
    }
}

/* Flags of mg that add to the reply line (meta_get_reply). */
#define MG_PRINTING_FLAGS \
    (FB4('s', 't', 'c', 'f') | FB4('l', 'h', 'O', 'k'))

/* What flag f (token tk) sets in m; an error string or NULL. */
static const char *take_flag(struct meta_req *m, char f,
                             const struct token *tk)
{
    const char *arg = tk->value + 1;

    switch (f) {
    case 'b':
        m->base64 = true;
        break;
    case 'q':
        m->quiet = true;
        break;
    case 'v':
        m->value = true;
        break;
    case 'u':
        m->no_bump = true;
        break;
    case 'I':
        m->invalidate = true;
        break;
    case 'O':
        if (tk->length > OPAQUE_MAX) {
            return "CLIENT_ERROR opaque token too long";
        }
        m->opaque = tk->value;
        m->opaque_len = tk->length;
        break;
    case 'C':
        m->has_cas = true;
        if (!safe_strtoull(arg, &m->cas) || *arg == '\0') {
            return ERR_TOKEN;
        }
        break;
    case 'T':
        m->has_ttl = true;
        if (!num_token(arg, &m->ttl)) {
            return ERR_TOKEN;
        }
        break;
    case 'N':
        m->has_vivify = true;
        if (!num_token(arg, &m->vivify_ttl)) {
            return ERR_TOKEN;
        }
        break;
    case 'R':
        m->has_recache = true;
        if (!num_token(arg, &m->recache_ttl)) {
            return ERR_TOKEN;
        }
        break;
    case 'F':
        m->has_flags = true;
        if (!safe_strtoul(arg, &m->client_flags) || *arg == '\0') {
            return ERR_FORMAT;
        }
        break;
    case 'D':
        m->has_delta = true;
        if (!safe_strtoull(arg, &m->delta) || *arg == '\0') {
            return "CLIENT_ERROR bad token in command line format";
        }
        break;
    case 'J':
        m->has_initial = true;
        if (!safe_strtoull(arg, &m->initial) || *arg == '\0') {
            return "CLIENT_ERROR bad token in command line format";
        }
        break;
    case 'M':
        if (tk->length != 2) {
            return "CLIENT_ERROR incorrect length for M token";
        }
        m->mode = arg[0];
        break;
    default:
        break;
    }
    return NULL;
}

/* Parse flag tokens t[first..ntok); returns an error string or NULL. */
static const char *parse_flags(struct meta_req *m, char cmd,
                               struct token *t, int first, int ntok)
{
    uint64_t ok = accepted(cmd);
    const char *err;
    int i;

    for (i = first; i < ntok; i++) {
        char f = t[i].value[0];
        uint64_t bit;

        if (!((f >= 'a' && f <= 'z') || (f >= 'A' && f <= 'Z'))) {
            return ERR_FLAG;
        }
        bit = FLAG_BIT(f);
        if (!(ok & bit)) {
            return ERR_FLAG;
        }
        if (m->seen & bit) {
            return "CLIENT_ERROR duplicate flag";
        }
        m->seen |= bit;
        m->order[m->nflags++] = f;
        err = take_flag(m, f, &t[i]);
        if (err != NULL) {
            return err;
        }
    }
    return NULL;
}

static uint32_t deadline(int32_t ttl)
{
    return util_deadline(ttl, current_time, process_started);
}

/* " k<key>" (base64 with " b" after it when the key is binary). */
static void out_key(struct conn *c, const char *key, size_t nkey,
                    bool binary)
{
    char buf[KEY_MAX_LENGTH * 2 + 8];

    if (binary) {
        int n = util_b64_encode(key, nkey, buf + 2);
        buf[0] = ' ';
        buf[1] = 'k';
        memcpy(buf + 2 + n, " b", 2);
        conn_out(c, buf, (size_t)n + 4);
    } else {
        conn_out(c, " k", 2);
        conn_out(c, key, nkey);
    }
}

static void out_opaque(struct conn *c, const struct meta_req *m)
{
    conn_out(c, " ", 1);
    conn_out(c, m->opaque, m->opaque_len);
}

/* " <flag><number>" without printf: this runs for every returned flag. */
static void out_num(struct conn *c, char flag, int64_t v)
{
    char buf[32];
    int n = 2;

    buf[0] = ' ';
    buf[1] = flag;
    if (v < 0) {
        buf[n++] = '-';
        v = -v;
    }
    n += util_u64toa((uint64_t)v, buf + n);
    conn_out(c, buf, (size_t)n);
}

static int64_t ttl_of(uint32_t exptime)
{
    return exptime == 0 ? -1 : (int64_t)exptime - current_time;
}

/* A reply code with only k and O echoed (misses, failures). */
static void out_code_k_o(struct conn *c, const char *code,
                         const struct meta_req *m, const char *key,
                         size_t nkey, bool binary, bool with_cas0)
{
    int i;

    conn_out(c, code, 2);
    for (i = 0; i < m->nflags; i++) {
        if (m->order[i] == 'k') {
            out_key(c, key, nkey, binary);
        } else if (m->order[i] == 'O') {
            out_opaque(c, m);
        } else if (m->order[i] == 'c' && with_cas0) {
            conn_out(c, " c0", 3);
        }
    }
    conn_out(c, "\r\n", 2);
}

/* --- mg --------------------------------------------------------------------- */

/* HD or "VA <len>", the requested flags in order, then Z X W, then the
 * value.  Takes over the reference to it. */
static void meta_get_reply(struct conn *c, const struct meta_req *m,
                           struct item *it, const struct meta_get_info *r)
{
    bool touched = false;
    int i;

    if (!(m->seen & MG_PRINTING_FLAGS) && !r->token_sent && !r->stale &&
        !r->won) {
        /* Nothing follows VA/HD on the line: one piece. */
        if (m->value) {
            char buf[3 + MAX_NUMBER_LEN + 3];
            int n = util_u64toa(it->nbytes - 2, buf + 3);
            memcpy(buf, "VA ", 3);
            memcpy(buf + 3 + n, "\r\n", 2);
            conn_out(c, buf, 3 + (size_t)n + 2);
            conn_out_item(c, it, ITEM_data(it), it->nbytes);
        } else {
            conn_out_str(c, "HD\r\n");
            item_remove(it);
        }
        return;
    }
    if (m->value) {
        char buf[16];
        memcpy(buf, "VA ", 3);
        conn_out(c, buf, 3 + (size_t)util_u64toa(it->nbytes - 2, buf + 3));
    } else {
        conn_out(c, "HD", 2);
    }
    for (i = 0; i < m->nflags; i++) {
        switch (m->order[i]) {
        case 'T':
            touched = true;
            break;
        case 's':
            out_num(c, 's', it->nbytes - 2);
            break;
        case 't':
            out_num(c, 't', ttl_of(touched ? it->exptime : r->exptime_before));
            break;
        case 'c':
            out_num(c, 'c', (int64_t)item_cas(it));
            break;
        case 'f':
            out_num(c, 'f', it->flags);
            break;
        case 'l':
            out_num(c, 'l', r->last_access);
            break;
        case 'h':
            out_num(c, 'h', r->fetched_before ? 1 : 0);
            break;
        case 'O':
            out_opaque(c, m);
            break;
        case 'k':
            out_key(c, ITEM_key(it), it->nkey,
                    (it->it_flags & ITEM_KEY_BINARY) != 0);
            break;
        default:
            break;
        }
    }
    if (r->token_sent) {
        conn_out(c, " Z", 2);
    }
    if (r->stale) {
        conn_out(c, " X", 2);
    }
    if (r->won) {
        conn_out(c, " W", 2);
    }
    conn_out(c, "\r\n", 2);
    if (m->value) {
        conn_out_value(c, it, it->nbytes);
    } else {
        item_remove(it);
    }
}

static void meta_get(struct conn *c, struct meta_req *m)
{
    struct meta_get_opts o;
    struct meta_get_info r;
    enum get_result why;
    struct item *it;
    bool touch_seen = false;
    int i;

    memset(&o, 0, sizeof(o));
    o.touch = m->has_ttl;
    o.exptime = deadline(m->ttl);
    o.vivify = m->has_vivify;
    o.viv_exptime = deadline(m->vivify_ttl);
    o.recache = m->has_recache;
    o.recache_before = m->recache_ttl > 0 ? deadline(m->recache_ttl) : 0;
    o.no_bump = m->no_bump;
    for (i = 0; i < m->nflags; i++) {
        if (m->order[i] == 'T') {
            touch_seen = true;
        } else if (m->order[i] == 'R') {
            o.recache_after_touch = touch_seen;
        }
    }
    it = item_get_meta(m->key, m->nkey, &o, &r, &why);
    /* As memcached: a hit with T counts as a touch, anything else as a
     * get. */
    if (it != NULL && m->has_ttl) {
        STAT_INCR(touch_cmds);
        SLAB_STAT_INCR(it->slabs_clsid, touch_hits);
    } else {
        STAT_INCR(get_cmds);
    }
    if (watch_mask & WATCH_FETCHERS) {
        watch_fetch(m->key, m->nkey, it, it ? "found" : "not_found", c->sfd);
    }
    if (it == NULL) {
        STAT_INCR(get_misses);
        if (why == GET_EXPIRED) {
            STAT_INCR(get_expired);
        } else if (why == GET_FLUSHED) {
            STAT_INCR(get_flushed);
        }
        if (!m->quiet) {
            out_code_k_o(c, "EN", m, m->key, m->nkey, m->base64, false);
        }
        return;
    }
    if (!m->has_ttl) {
        SLAB_STAT_INCR(it->slabs_clsid, get_hits);
    }
    meta_get_reply(c, m, it, &r);
}

/* --- ms ---------------------------------------------------------------------- */

static enum store_mode ms_mode(const struct meta_req *m, bool *bad)
{
    *bad = false;
    switch (m->mode) {
    case 0: case 'S':
        return m->has_cas ? STORE_MODE_CAS : STORE_MODE_SET;
    case 'E':
        return STORE_MODE_ADD;
    case 'A':
        return STORE_MODE_APPEND;
    case 'P':
        return STORE_MODE_PREPEND;
    case 'R':
        return m->has_cas ? STORE_MODE_CAS : STORE_MODE_REPLACE;
    default:
        *bad = true;
        return STORE_MODE_SET;
    }
}

/* The ms request waiting for its data block lives in the connection
 * (c->proto_state), allocated on the first ms and reused after. */
static struct meta_req *pending_of(struct conn *c)
{
    if (c->proto_state == NULL) {
        c->proto_state = malloc(sizeof(struct meta_req));
    }
    return c->proto_state;
}

static void meta_set(struct conn *c, struct meta_req *m, int32_t vlen)
{
    enum alloc_result why;
    enum store_mode mode;
    struct item *it;
    bool bad;

    mode = ms_mode(m, &bad);
    if (bad) {
        meta_error(c, "CLIENT_ERROR invalid mode for ms M token");
        conn_start_swallow(c, (size_t)vlen + 2);
        return;
    }
    it = item_alloc(m->key, m->nkey, m->has_flags ? m->client_flags : 0,
                    m->has_ttl ? deadline(m->ttl) : 0, (size_t)vlen + 2,
                    &why);
    if (it == NULL) {
        if (why == ALLOC_TOO_LARGE) {
            STAT_INCR(store_too_large);
            out_line(c, "SERVER_ERROR object too large for cache");
        } else {
            STAT_INCR(store_no_memory);
            out_line(c, "SERVER_ERROR out of memory storing object");
        }
        {
            bool exists;
            item_delete(m->key, m->nkey, 0, &exists);
        }
        conn_start_swallow(c, (size_t)vlen + 2);
        return;
    }
    if (m->base64) {
        it->it_flags |= ITEM_KEY_BINARY;
    }
    if (pending_of(c) == NULL) {
        item_remove(it);
        out_line(c, "SERVER_ERROR out of memory");
        conn_start_swallow(c, (size_t)vlen + 2);
        return;
    }
    *(struct meta_req *)c->proto_state = *m;
    if (m->base64) {
        /* The copy's key must point at the copy's own buffer. */
        ((struct meta_req *)c->proto_state)->key =
            ((struct meta_req *)c->proto_state)->keybuf;
    }
    conn_start_nread(c, it, mode, m->cas, m->quiet);
    c->nr.meta = true;
}

void proto_meta_complete_nread(struct conn *c)
{
    struct meta_req *m = c->proto_state;
    struct item *it = c->nr.it;
    enum store_mode mode = c->nr.mode;
    uint64_t cas = c->nr.cas;
    enum store_result r;
    const char *code;
    int i;

    c->nr.it = NULL;
    c->nr.meta = false;
    SLAB_STAT_INCR(it->slabs_clsid, set_cmds);
    if (!item_crlf_ok(it)) {
        meta_error(c, "CLIENT_ERROR bad data chunk");
        item_remove(it);
        return;
    }
    if (watch_mask & WATCH_FETCHERS) {
        watch_fetch_peek(ITEM_key(it), it->nkey, c->sfd);
    }
    r = item_store_meta(it, mode, &cas, m->invalidate);
    if (watch_mask & WATCH_MUTATIONS) {
        watch_store_item(it, mode, r, c->sfd);
    }
    proto_count_cas(it->slabs_clsid, mode, r);
    switch (r) {
    case STORE_STORED:
        code = "HD";
        break;
    case STORE_EXISTS:
        code = "EX";
        break;
    case STORE_NOT_FOUND:
        code = "NF";
        break;
    default:
        code = "NS";
        break;
    }
    if (r == STORE_STORED && m->quiet) {
        item_remove(it);
        return;
    }
    conn_out(c, code, 2);
    for (i = 0; i < m->nflags; i++) {
        switch (m->order[i]) {
        case 'k':
            out_key(c, m->key, m->nkey, m->base64);
            break;
        case 'O':
            out_opaque(c, m);
            break;
        case 'c':
            out_num(c, 'c', r == STORE_STORED ? (int64_t)cas : 0);
            break;
        default:
            break;
        }
    }
    conn_out(c, "\r\n", 2);
    item_remove(it);
}

/* --- md ------------------------------------------------------------------------ */

static void meta_delete(struct conn *c, struct meta_req *m)
{
    bool exists;
    unsigned clsid;
    const char *code;

    if (item_delete_meta(m->key, m->nkey, m->cas, m->invalidate,
                         m->has_ttl, deadline(m->ttl), &exists, &clsid)) {
        if (!m->invalidate) {
            SLAB_STAT_INCR(clsid, delete_hits);
        }
        code = "HD";
    } else if (exists) {
        /* memcached counts a CAS mismatch as a miss. */
        STAT_INCR(delete_misses);
        code = "EX";
    } else {
        STAT_INCR(delete_misses);
        code = "NF";
    }
    if (m->quiet && code[0] == 'H') {
        return;
    }
    out_code_k_o(c, code, m, m->key, m->nkey, m->base64, false);
}

/* --- ma ------------------------------------------------------------------------ */


static void ma_reply(struct conn *c, struct meta_req *m, uint64_t value,
                     uint64_t cas, bool created)
{
    char num[MAX_NUMBER_LEN + 1];
    int len = util_u64toa(value, num);
    struct item *it = NULL;
    int i;

    if (m->quiet && !created) {
        return;                 /* q hides a success, VA included */
    }
    if (m->value) {
        char buf[16];
        int n = snprintf(buf, sizeof(buf), "VA %d", len);
        conn_out(c, buf, (size_t)n);
    } else {
        conn_out(c, "HD", 2);
    }
    for (i = 0; i < m->nflags; i++) {
        switch (m->order[i]) {
        case 'O':
            out_opaque(c, m);
            break;
        case 'k':
            out_key(c, m->key, m->nkey, m->base64);
            break;
        case 'c':
            out_num(c, 'c', (int64_t)cas);
            break;
        case 't':
            if (it == NULL) {
                it = item_peek(m->key, m->nkey);
            }
            out_num(c, 't', it ? ttl_of(it->exptime) : -1);
            break;
        default:
            break;
        }
    }
    if (it != NULL) {
        item_remove(it);
    }
    conn_out(c, "\r\n", 2);
    if (m->value) {
        conn_out(c, num, (size_t)len);
        conn_out(c, "\r\n", 2);
    }
}

static void meta_arith(struct conn *c, struct meta_req *m)
{
    char buf[MAX_NUMBER_LEN + 1];
    uint64_t value = 0, cas;
    enum delta_result r;
    bool incr, created = false;

    switch (m->mode) {
    case 0: case 'I': case '+':
        incr = true;
        break;
    case 'D': case '-':
        incr = false;
        break;
    default:
        meta_error(c, "CLIENT_ERROR invalid mode for ma M token");
        return;
    }
    cas = m->cas;
    r = item_delta(m->key, m->nkey, incr, m->has_delta ? m->delta : 1,
                   &value, buf, &cas);
    if (r == DELTA_NOT_FOUND && m->has_vivify && !m->has_cas) {
        r = item_create_counter(m->key, m->nkey, m->initial,
                                deadline(m->vivify_ttl), &cas);
        value = m->initial;
        created = r == DELTA_OK;
        if (r == DELTA_NOT_FOUND) {
            cas = m->cas;
            r = item_delta(m->key, m->nkey, incr,
                           m->has_delta ? m->delta : 1, &value, buf, &cas);
        }
    }
    if (r == DELTA_OK && m->has_ttl) {
        enum get_result why;
        struct item *it = item_touch(m->key, m->nkey, deadline(m->ttl), &why);
        if (it != NULL) {
            item_remove(it);
        }
    }
    switch (r) {
    case DELTA_OK:
        ma_reply(c, m, value, cas, created);
        break;
    case DELTA_NON_NUMERIC:
        meta_error(c, "CLIENT_ERROR cannot increment or decrement "
                      "non-numeric value");
        break;
    case DELTA_NO_MEMORY:
        out_line(c, "SERVER_ERROR out of memory");
        break;
    case DELTA_EXISTS:
    case DELTA_SUPERSEDED:      /* changed since the request arrived */
        out_code_k_o(c, "EX", m, m->key, m->nkey, m->base64, false);
        break;
    case DELTA_NOT_FOUND:
        if (incr) {
            STAT_INCR(incr_misses);
        } else {
            STAT_INCR(decr_misses);
        }
        out_code_k_o(c, "NF", m, m->key, m->nkey, m->base64, false);
        break;
    }
}

/* --- me -------------------------------------------------------------------------- */

static void meta_debug(struct conn *c, struct meta_req *m)
{
    struct item *it = item_peek(m->key, m->nkey);
    char buf[256];
    int n;

    STAT_INCR(meta_cmds);
    if (it == NULL) {
        out_line(c, "EN");
        return;
    }
    conn_out(c, "ME ", 3);
    conn_out(c, m->key_token, m->key_token_len);
    n = snprintf(buf, sizeof(buf),
                 " exp=%lld la=%u cas=%llu fetch=%s cls=%u size=%zu\r\n",
                 (long long)ttl_of(it->exptime), current_time - it->atime,
                 (unsigned long long)item_cas(it),
                 (it->it_flags & ITEM_FETCHED) ? "yes" : "no",
                 it->slabs_clsid, (size_t)ITEM_ntotal(it));
    conn_out(c, buf, (size_t)n);
    item_remove(it);
}

/* --- dispatch ---------------------------------------------------------------------- */

/* The error a bad flag or key gets: md and ma report every flag or key
 * problem one way, me any as a format error. */
static const char *cmd_error(char cmd, const char *err)
{
    if ((cmd == 'd' || cmd == 'a') && err != ERR_FORMAT &&
        strcmp(err, "CLIENT_ERROR opaque token too long") != 0) {
        return "CLIENT_ERROR invalid or duplicate flag";
    }
    return cmd == 'e' ? ERR_FORMAT : err;
}

/* A parsed meta command, run. */
static void run_meta(struct conn *c, char cmd, struct meta_req *m,
                     int32_t vlen)
{
    switch (cmd) {
    case 'g':
        meta_get(c, m);
        break;
    case 's':
        meta_set(c, m, vlen);
        break;
    case 'd':
        meta_delete(c, m);
        break;
    case 'a':
        meta_arith(c, m);
        break;
    case 'e':
        meta_debug(c, m);
        break;
    default:
        break;
    }
}

bool proto_meta_dispatch(struct conn *c, struct token *t, int ntok)
{
    struct meta_req m;
    const char *err;
    char cmd;
    int32_t vlen = 0;
    int first = 2;

    if (t[0].length != 2 || t[0].value[0] != 'm') {
        return false;
    }
    cmd = t[0].value[1];
    switch (cmd) {
    case 'g': case 's': case 'd': case 'a': case 'n': case 'e':
        break;
    default:
        return false;
    }
    if (cmd == 'n') {
        conn_out_str(c, "MN\r\n");
        return true;
    }
    if (ntok < 2) {
        meta_error(c, cmd == 'e' ? ERR_FORMAT : "ERROR");
        return true;
    }
    memset(&m, 0, offsetof(struct meta_req, keybuf));
    if (cmd == 's') {
        if (ntok < 3 || !safe_strtol(t[2].value, &vlen) || vlen < 0 ||
            t[1].length > KEY_MAX_LENGTH) {
            meta_error(c, ERR_FORMAT);
            return true;
        }
        first = 3;
    }
    if (ntok + 1 > META_MAX_TOKENS) {
        meta_error(c, cmd == 'g' ? "CLIENT_ERROR options flags are too long"
                                 : "CLIENT_ERROR options flags too long");
        return true;
    }
    if (cmd == 'e' && ntok < 2) {
        meta_error(c, ERR_FORMAT);
        return true;
    }
    err = parse_flags(&m, cmd, t, first, ntok);
    if (err == NULL) {
        err = parse_key(&m, &t[1]);
    }
    if (err != NULL) {
        meta_error(c, cmd_error(cmd, err));
        if (cmd == 's') {
            conn_start_swallow(c, (size_t)vlen + 2);
        }
        return true;
    }
    run_meta(c, cmd, &m, vlen);
    return true;
}
