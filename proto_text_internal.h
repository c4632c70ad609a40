/*
 * proto_text_internal.h - the reply helpers proto_text.c and
 * proto_text_admin.c share: a reply line, a counted client error, and
 * the noreply token.  Inline: every STORED of a set goes through reply().
 */
#ifndef PROTO_TEXT_INTERNAL_H
#define PROTO_TEXT_INTERNAL_H

#include <stdbool.h>
#include <string.h>

#include "conn.h"
#include "conn_reply.h"
#include "proto.h"
#include "stats.h"

/* Most tokens a request line is split into (proto_text_tokenize). */
#define MAX_TOKENS 24

/* s and "\r\n" in one piece: one reservation instead of two conn_out
 * calls (every STORED of a set comes here). */
static inline void reply(struct conn *c, const char *s)
{
    size_t n;
    char *p;

    if (c->noreply) {
        return;
    }
    n = strlen(s);
    p = conn_out_reserve(c, n + 2);
    if (p == NULL) {
        conn_close_after_write(c);
        return;
    }
    memcpy(p, s, n);
    p[n] = '\r';
    p[n + 1] = '\n';
    conn_out_commit(c, n + 2);
}

/* Errors are counted; noreply does not hide them from the counter. */
static inline void client_error(struct conn *c, const char *s)
{
    STAT_INCR(client_errors);
    reply(c, s);
}

static inline bool is_noreply(struct token *t, int ntok)
{
    if (ntok > 0 && t[ntok - 1].length == 7 &&
        strcmp(t[ntok - 1].value, "noreply") == 0) {
        return true;
    }
    return false;
}

#endif
