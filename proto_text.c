/*
 * proto_text.c - memcached's text protocol: split a request line into
 * tokens, call the storage API, and queue the reply bytes exactly as
 * memcached 1.6 writes them.  No socket calls and no hash-table access
 * here: bytes come from and go to conn.c, data from and to items.c.
 */
#include "memcached.h"
#include "proto_text.h"
#include "proto_text_admin.h"
#include "proto_text_internal.h"
#include "proto.h"
#include "proto_meta.h"
#include "authfile.h"
#include "conn.h"
#include "conn_reply.h"
#include "items.h"
#include "log.h"
#include "settings.h"
#include "slabs.h"
#include "stats.h"
#include "util.h"
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int proto_text_tokenize(char *line, struct token *tokens, int max,
                        char **rest)
{
    char *s = line;
    int n = 0;

    *rest = NULL;
    while (*s == ' ') {
        s++;
    }
    while (*s != '\0') {
        char *e;
        if (n == max) {
            *rest = s;
            break;
        }
        e = s;
        while (*e != ' ' && *e != '\0') {
            e++;
        }
        tokens[n].value = s;
        tokens[n].length = (size_t)(e - s);
        n++;
        if (*e == '\0') {
            break;
        }
        *e = '\0';
        s = e + 1;
        while (*s == ' ') {
            s++;
        }
    }
    return n;
}

/* --- small reply helpers -------------------------------------------------- */

/* A key must be 1..250 bytes.  As in memcached, the text protocol only
 * splits on spaces: other bytes, control characters included, are part of
 * the key. */
static bool key_ok(const struct token *t)
{
    return t->length > 0 && t->length <= KEY_MAX_LENGTH;
}

/* --- retrieval ------------------------------------------------------------- */

/* "VALUE <key> <flags> <bytes>[ <cas>]\r\n" then the value. */
static int out_value(struct conn *c, struct item *it, bool with_cas)
{
    char *p = conn_out_reserve(c, 6 + KEY_MAX_LENGTH + 3 * 22 + 2);
    char *s = p;

    if (p == NULL) {
        item_remove(it);
        return -1;
    }
    memcpy(s, "VALUE ", 6);
    s += 6;
    memcpy(s, ITEM_key(it), it->nkey);
    s += it->nkey;
    *s++ = ' ';
    s += util_u64toa(it->flags, s);
    *s++ = ' ';
    s += util_u64toa(it->nbytes - 2, s);
    if (with_cas) {
        *s++ = ' ';
        s += util_u64toa(item_cas(it), s);
    }
    *s++ = '\r';
    *s++ = '\n';
    conn_out_commit(c, (size_t)(s - p));
    return conn_out_value(c, it, it->nbytes);
}

/*
 * A multi-get may name more keys than one connection's reply may hold
 * (conn_out_full): 1 MB of line is half a million keys.  Once the reply
 * is full, the keys not served yet go back into the read buffer as a
 * request of their own, written over the keys already served ("get k9
 * k10 ..."), and the connection sends what it has before it reads that
 * request.  No END is sent until the line's last key, so the client gets
 * the same bytes as from one pass.  The keys left are checked first: a
 * bad one fails the whole line before anything is sent, as it would
 * have.
 */
static bool rest_keys_ok(const struct token *t, int i, int ntok,
                         const char *rest)
{
    for (; i < ntok; i++) {
        if (!key_ok(&t[i])) {
            return false;
        }
    }
    while (rest != NULL && *rest != '\0') {
        const char *e = strchr(rest, ' ');
        size_t len = e == NULL ? strlen(rest) : (size_t)(e - rest);
        if (len > KEY_MAX_LENGTH) {
            return false;
        }
        rest = e == NULL ? NULL : e + 1;
    }
    return true;
}

/* Put keys t[i..] (and the untokenized rest) back as "<cmd> [<exptime>]
 * <keys>\n" ending where the consumed line ended, just before c->rcurr.
 * The command and exptime took at least as many bytes before the first
 * key, and a key was served, so the prefix fits in front of t[i]. */
static void requeue_rest(struct conn *c, struct token *t, int i, int ntok,
                         const struct token *cmd, const int32_t *exptime)
{
    char *el = c->rcurr - 1;    /* the line's '\n', or the NUL over it */
    char *line_end = *el == '\n' ? el - 1 : el;
    char prefix[32];
    int plen = exptime == NULL
        ? snprintf(prefix, sizeof(prefix), "%.*s ", (int)cmd->length,
                   cmd->value)
        : snprintf(prefix, sizeof(prefix), "%.*s %ld ", (int)cmd->length,
                   cmd->value, (long)*exptime);
    char *start = t[i].value - plen;
    int j;

    for (j = i; j < ntok; j++) {
        char *e = t[j].value + t[j].length;
        if (e < line_end) {
            *e = ' ';           /* the tokenizer's NUL */
        }
    }
    *line_end = line_end == el ? '\n' : '\r';
    memcpy(start, prefix, (size_t)plen);
    c->get_rest_checked = true;
    c->rbytes += (size_t)(c->rcurr - start);
    c->rcurr = start;
}

/* -o read_buf_mem_limit: a further key of a multi-get (not the first
 * of a requeued rest: counted false) takes a response slot; true when
 * the worker's share is used up. */
static inline bool more_keys_refused(struct conn *c, bool counted)
{
    return __builtin_expect(settings.read_buf_mem_limit != 0, 0) &&
           counted && !conn_resp_take_slow(c);
}

static void process_get(struct conn *c, struct token *t, int ntok,
                        char *rest, bool with_cas, bool touch)
{
    struct out_mark mark;
    struct token cmd = t[0];    /* t[] is reused for the rest of the line */
    uint32_t deadline = 0;
    int32_t exptime = 0;
    int first = 1;
    bool served = false;
    bool checked = c->get_rest_checked;  /* a line requeued before */
    int i;

    c->get_rest_checked = false;
    if (touch) {
        if (ntok < 3) {
            client_error(c, "ERROR");
            return;
        }
        if (!safe_strtol(t[1].value, &exptime)) {
            client_error(c, "CLIENT_ERROR invalid exptime argument");
            return;
        }
        deadline = util_deadline(exptime, current_time, process_started);
        first = 2;
    } else if (ntok < 2) {
        client_error(c, "ERROR");
        return;
    }
    conn_out_mark(c, &mark);
    for (;;) {
        for (i = first; i < ntok; i++) {
            enum get_result why;
            struct item *it;

            if (!key_ok(&t[i])) {
                conn_out_rollback(c, &mark);
                client_error(c, "CLIENT_ERROR bad command line format");
                return;
            }
            /* Only past the first key (i > first implies served): a
             * single-key get tests one flag here. */
            if (served && more_keys_refused(c, i > first)) {
                conn_out_rollback(c, &mark);
                reply(c, "SERVER_ERROR out of memory writing get response");
                return;
            }
            if (served && conn_out_full(c)) {
                if (!checked && !rest_keys_ok(t, i, ntok, rest)) {
                    conn_out_rollback(c, &mark);
                    client_error(c, "CLIENT_ERROR bad command line format");
                    return;
                }
                requeue_rest(c, t, i, ntok, &cmd, touch ? &exptime : NULL);
                return;
            }
            it = touch ? item_touch(t[i].value, t[i].length, deadline, &why)
                       : item_get(t[i].value, t[i].length, &why);
            served = true;
            proto_count_get(it, why, touch);
            if (watch_mask & WATCH_FETCHERS) {
                watch_fetch(t[i].value, t[i].length, it,
                            it ? "found" : why == GET_EXPIRED ? "expired"
                            : why == GET_FLUSHED ? "flushed" : "not_found",
                            c->sfd);
            }
            stats_detail_get(t[i].value, t[i].length, it != NULL);
            if (it != NULL && out_value(c, it, with_cas) != 0) {
                conn_out_rollback(c, &mark);
                reply(c, "SERVER_ERROR out of memory writing get response");
                return;
            }
        }
        if (rest == NULL) {
            break;
        }
        ntok = proto_text_tokenize(rest, t, MAX_TOKENS, &rest);
        first = 0;
    }
    conn_out_str(c, "END\r\n");
}

/* --- storage --------------------------------------------------------------- */

static void process_update(struct conn *c, struct token *t, int ntok,
                           enum store_mode mode)
{
    bool with_cas = mode == STORE_MODE_CAS;
    int want = with_cas ? 6 : 5;
    uint32_t flags;
    int32_t exptime, vlen;
    uint64_t cas = 0;
    enum alloc_result why;
    struct item *it;

    /* A token after the length that is not "noreply" is ignored. */
    c->noreply = ntok == want + 1 && is_noreply(t, ntok);
    if (t[1].length > KEY_MAX_LENGTH) {
        client_error(c, "CLIENT_ERROR bad command line format");
        return;
    }
    if (!safe_strtoul(t[2].value, &flags) ||
        !safe_strtol(t[3].value, &exptime) ||
        !safe_strtol(t[4].value, &vlen) ||
        (with_cas && !safe_strtoull(t[5].value, &cas)) ||
        vlen < 0 || vlen > INT32_MAX - 2) {
        client_error(c, "CLIENT_ERROR bad command line format");
        return;
    }
    it = item_alloc(t[1].value, t[1].length, flags,
                    util_deadline(exptime, current_time, process_started),
                    (size_t)vlen + 2, &why);
    if (it == NULL) {
        if (why == ALLOC_TOO_LARGE) {
            STAT_INCR(store_too_large);
            reply(c, "SERVER_ERROR object too large for cache");
        } else {
            STAT_INCR(store_no_memory);
            reply(c, "SERVER_ERROR out of memory storing object");
        }
        /* A failed set must not leave the old value readable. */
        if (mode == STORE_MODE_SET) {
            bool exists;
            item_delete(t[1].value, t[1].length, 0, &exists);
        }
        conn_start_swallow(c, (size_t)vlen + 2);
        return;
    }
    conn_start_nread(c, it, mode, cas, c->noreply);
}

static void count_store(struct item *it, enum store_mode mode,
                        enum store_result r)
{
    SLAB_STAT_INCR(it->slabs_clsid, set_cmds);
    proto_count_cas(it->slabs_clsid, mode, r);
}

static void complete_auth(struct conn *c, const char *data, size_t len)
{
    const char *sp = memchr(data, ' ', len);

    STAT_INCR(auth_cmds);
    if (sp == NULL) {
        STAT_INCR(auth_errors);
        conn_out_str(c, "CLIENT_ERROR bad authentication token format\r\n");
        return;
    }
    if (memcmp(data + len, "\r\n", 2) == 0 &&
        authfile_check(data, (size_t)(sp - data), sp + 1,
                        len - (size_t)(sp - data) - 1)) {
        c->authenticated = true;
        conn_out_str(c, "STORED\r\n");
        return;
    }
    STAT_INCR(auth_errors);
    conn_out_str(c, "CLIENT_ERROR authentication failure\r\n");
}

void proto_text_complete_nread(struct conn *c)
{
    struct item *it = c->nr.it;
    enum store_result r;
    uint64_t cas = c->nr.cas;

    c->nr.it = NULL;
    c->noreply = c->nr.noreply;
    if (c->nr.auth) {
        c->nr.auth = false;
        c->noreply = false;
        complete_auth(c, c->nr.token, (size_t)(c->nr.dst - c->nr.token) - 2);
        free(c->nr.token);
        c->nr.token = NULL;
        return;
    }
    if (!item_crlf_ok(it)) {
        SLAB_STAT_INCR(it->slabs_clsid, set_cmds);
        client_error(c, "CLIENT_ERROR bad data chunk");
        item_remove(it);
        c->noreply = false;
        return;
    }
    if (watch_mask & WATCH_FETCHERS) {
        watch_fetch_peek(ITEM_key(it), it->nkey, c->sfd);
    }
    r = item_store(it, c->nr.mode, &cas);
    count_store(it, c->nr.mode, r);
    if (watch_mask & WATCH_MUTATIONS) {
        watch_store_item(it, c->nr.mode, r, c->sfd);
    }
    stats_detail_set(ITEM_key(it), it->nkey);
    switch (r) {
    case STORE_STORED:
        reply(c, "STORED");
        break;
    case STORE_EXISTS:
        reply(c, "EXISTS");
        break;
    case STORE_NOT_FOUND:
        reply(c, "NOT_FOUND");
        break;
    case STORE_NOT_STORED:
        reply(c, "NOT_STORED");
        break;
    case STORE_NO_MEMORY:
        STAT_INCR(store_no_memory);
        reply(c, "SERVER_ERROR out of memory storing object");
        break;
    }
    item_remove(it);
    c->noreply = false;
}

/* --- other key commands ------------------------------------------------------ */

static void process_delete(struct conn *c, struct token *t, int ntok)
{
    bool exists;
    unsigned clsid;

    if (ntok > 2) {
        bool hold_zero = strcmp(t[2].value, "0") == 0;
        bool nr = is_noreply(t, ntok);
        bool valid = (ntok == 3 && (hold_zero || nr)) ||
                     (ntok == 4 && hold_zero && nr);
        /* noreply silences the usage error too, as in memcached. */
        c->noreply = nr;
        if (!valid) {
            client_error(c, "CLIENT_ERROR bad command line format.  "
                            "Usage: delete <key> [noreply]");
            return;
        }
    }
    if (!key_ok(&t[1])) {
        client_error(c, "CLIENT_ERROR bad command line format");
        return;
    }
    stats_detail_delete(t[1].value, t[1].length);
    if (item_delete_cls(t[1].value, t[1].length, 0, &exists, &clsid)) {
        SLAB_STAT_INCR(clsid, delete_hits);
        reply(c, "DELETED");
    } else {
        STAT_INCR(delete_misses);
        reply(c, "NOT_FOUND");
    }
}

static void process_arith(struct conn *c, struct token *t, int ntok,
                          bool incr)
{
    char buf[MAX_NUMBER_LEN + 1];
    uint64_t delta, value, cas = 0;

    c->noreply = is_noreply(t, ntok);
    if (!key_ok(&t[1])) {
        client_error(c, "CLIENT_ERROR bad command line format");
        return;
    }
    if (!safe_strtoull(t[2].value, &delta)) {
        client_error(c, "CLIENT_ERROR invalid numeric delta argument");
        return;
    }
    switch (item_delta(t[1].value, t[1].length, incr, delta, &value, buf,
                       &cas)) {
    case DELTA_OK:
        reply(c, buf);
        break;
    case DELTA_NON_NUMERIC:
        client_error(c, "CLIENT_ERROR cannot increment or decrement "
                        "non-numeric value");
        break;
    case DELTA_NO_MEMORY:
        reply(c, "SERVER_ERROR out of memory");
        break;
    case DELTA_SUPERSEDED:
        reply(c, "SERVER_ERROR not applied: the request waited through "
                 "a stall");
        break;
    case DELTA_NOT_FOUND:
    case DELTA_EXISTS:
        if (incr) {
            STAT_INCR(incr_misses);
        } else {
            STAT_INCR(decr_misses);
        }
        reply(c, "NOT_FOUND");
        break;
    }
}

static void process_touch(struct conn *c, struct token *t, int ntok)
{
    enum get_result why;
    int32_t exptime;
    struct item *it;

    c->noreply = is_noreply(t, ntok);
    if (!key_ok(&t[1])) {
        client_error(c, "CLIENT_ERROR bad command line format");
        return;
    }
    if (!safe_strtol(t[2].value, &exptime)) {
        client_error(c, "CLIENT_ERROR invalid exptime argument");
        return;
    }
    it = item_touch(t[1].value, t[1].length,
                    util_deadline(exptime, current_time, process_started),
                    &why);
    STAT_INCR(touch_cmds);
    if (it != NULL) {
        SLAB_STAT_INCR(it->slabs_clsid, touch_hits);
        item_remove(it);
        reply(c, "TOUCHED");
    } else {
        STAT_INCR(touch_misses);
        reply(c, "NOT_FOUND");
    }
}

/* --- dispatch ------------------------------------------------------------------ */

/* The monitor port answers only what a scraper needs. */
static bool monitor_allowed(struct token *t, int ntok)
{
    const char *cmd = t[0].value;

    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "quit") == 0) {
        return true;
    }
    if (strcmp(cmd, "stats") != 0) {
        return false;
    }
    /* not cachedump: key names (session ids...) are the clients' data */
    return ntok == 1 || (strcmp(t[1].value, "reset") != 0 &&
                         strcmp(t[1].value, "detail") != 0 &&
                         strcmp(t[1].value, "cachedump") != 0);
}

/*
 * -Y: until a connection authenticates, only "set <any> <flags> <exptime>
 * <len>" is accepted, its data being "user password"; anything else
 * answers "CLIENT_ERROR unauthenticated", as memcached does.  The data is
 * read into a buffer of at most AUTH_TOKEN_MAX bytes, never into an item:
 * before it authenticates a connection can neither touch the cache (a
 * refused set deletes nothing) nor hold item memory.  Returns true when
 * the request was handled here.
 */
#define AUTH_TOKEN_MAX 1024
static bool auth_refuse(struct conn *c, const char *why)
{
    STAT_INCR(auth_errors);
    conn_out(c, why, strlen(why));
    return true;
}

static bool text_auth_gate(struct conn *c, struct token *t, int ntok)
{
    int32_t vlen;

    if (settings.auth_file == NULL || c->authenticated || c->monitor) {
        return false;
    }
    if (strcmp(t[0].value, "set") != 0 || (ntok != 5 && ntok != 6)) {
        return auth_refuse(c, "CLIENT_ERROR unauthenticated\r\n");
    }
    if (!safe_strtol(t[4].value, &vlen) || vlen < 0 ||
        vlen > INT32_MAX - 2) {
        return auth_refuse(c, "CLIENT_ERROR bad command line format\r\n");
    }
    if (vlen > AUTH_TOKEN_MAX) {
        conn_start_swallow(c, (size_t)vlen + 2);
        return auth_refuse(c, "CLIENT_ERROR authentication failure\r\n");
    }
    if (conn_start_auth_read(c, (size_t)vlen + 2) != 0) {
        conn_start_swallow(c, (size_t)vlen + 2);
        return auth_refuse(c, "SERVER_ERROR out of memory\r\n");
    }
    return true;
}

#define IS(s) (n == sizeof(s) - 1 && memcmp(cmd, s, sizeof(s) - 1) == 0)

/* The storage commands; false when t[0] is none of them (or has the
 * wrong number of tokens). */
static bool data_command(struct conn *c, struct token *t, int ntok,
                         char *rest)
{
    const char *cmd = t[0].value;
    size_t n = t[0].length;

    if (IS("get")) {
        process_get(c, t, ntok, rest, false, false);
    } else if (IS("set") && (ntok == 5 || ntok == 6)) {
        process_update(c, t, ntok, STORE_MODE_SET);
    } else if (IS("gets")) {
        process_get(c, t, ntok, rest, true, false);
    } else if (IS("add") && (ntok == 5 || ntok == 6)) {
        process_update(c, t, ntok, STORE_MODE_ADD);
    } else if (IS("replace") && (ntok == 5 || ntok == 6)) {
        process_update(c, t, ntok, STORE_MODE_REPLACE);
    } else if (IS("append") && (ntok == 5 || ntok == 6)) {
        process_update(c, t, ntok, STORE_MODE_APPEND);
    } else if (IS("prepend") && (ntok == 5 || ntok == 6)) {
        process_update(c, t, ntok, STORE_MODE_PREPEND);
    } else if (IS("cas") && (ntok == 6 || ntok == 7)) {
        process_update(c, t, ntok, STORE_MODE_CAS);
    } else if (IS("delete") && ntok >= 2 && ntok <= 4) {
        process_delete(c, t, ntok);
    } else if (IS("incr") && (ntok == 3 || ntok == 4)) {
        process_arith(c, t, ntok, true);
    } else if (IS("decr") && (ntok == 3 || ntok == 4)) {
        process_arith(c, t, ntok, false);
    } else if (IS("touch") && (ntok == 3 || ntok == 4)) {
        process_touch(c, t, ntok);
    } else if (IS("gat")) {
        process_get(c, t, ntok, rest, false, true);
    } else if (IS("gats")) {
        process_get(c, t, ntok, rest, true, true);
    } else {
        return false;
    }
    return true;
}

#undef IS

static void dispatch(struct conn *c, struct token *t, int ntok, char *rest)
{
    if (c->monitor && !monitor_allowed(t, ntok)) {
        client_error(c, "CLIENT_ERROR not allowed on the monitor port");
        return;
    }
    if (text_auth_gate(c, t, ntok)) {
        return;
    }
    if (t[0].length == 2 && t[0].value[0] == 'm' &&
        proto_meta_dispatch(c, t, ntok)) {
        return;
    }
    if (data_command(c, t, ntok, rest) || proto_text_admin(c, t, ntok)) {
        return;
    }
    if (t[ntok - 1].length >= 5 &&
        memcmp(t[ntok - 1].value, "HTTP/", 5) == 0) {
        /* An HTTP request line: hang up without a reply, as memcached
         * does. */
        conn_close_after_write(c);
    } else {
        client_error(c, "ERROR");
    }
}

/* A line without "\n" in TEXT_LINE_MAX bytes is garbage unless it is a
 * long multi-get, which may use up to TEXT_GETLINE_MAX, on a connection
 * that may read (not before -Y authentication). */
static bool long_line_ok(const struct conn *c)
{
    const char *p = c->rcurr;
    size_t left = c->rbytes;

    if (settings.auth_file != NULL && !c->authenticated && !c->monitor) {
        return false;
    }
    while (left > 0 && *p == ' ') {
        p++;
        left--;
    }
    if (c->rbytes - left > 100 || c->rbytes >= TEXT_GETLINE_MAX) {
        return false;
    }
    return (left >= 4 && memcmp(p, "get ", 4) == 0) ||
           (left >= 5 && memcmp(p, "gets ", 5) == 0) ||
           (left >= 4 && memcmp(p, "gat ", 4) == 0) ||
           (left >= 5 && memcmp(p, "gats ", 5) == 0);
}

enum proto_result proto_text_process(struct conn *c)
{
    struct token tokens[MAX_TOKENS];
    char *el, *line_end, *rest;
    int ntok;

    el = memchr(c->rcurr, '\n', c->rbytes);
    if (el == NULL) {
        if (c->rbytes > TEXT_LINE_MAX && !long_line_ok(c)) {
            return PROTO_CLOSE;
        }
        return PROTO_NEED_MORE;
    }
    line_end = el;
    if (line_end > c->rcurr && line_end[-1] == '\r') {
        line_end--;
    }
    *line_end = '\0';
    ntok = proto_text_tokenize(c->rcurr, tokens, MAX_TOKENS, &rest);
    c->rbytes -= (size_t)(el + 1 - c->rcurr);
    c->rcurr = el + 1;
    c->noreply = false;
    if (ntok == 0) {
        client_error(c, "ERROR");
        return PROTO_DONE;
    }
    log_trace("<%d %s", c->sfd, tokens[0].value);
    dispatch(c, tokens, ntok, rest);
    if (c->state != CONN_NREAD) {
        c->noreply = false;
    }
    return c->close_after_write ? PROTO_CLOSE : PROTO_DONE;
}
