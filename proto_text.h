/*
 * proto_text.h - the text protocol (and, through proto_meta.c, the meta
 * commands that share its framing).
 */
#ifndef PROTO_TEXT_H
#define PROTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct conn;

/* Longest request line we buffer before deciding it is garbage; get/gets
 * lines with many keys may be longer. */
#define TEXT_LINE_MAX 2048
/* Hard cap for a multi-key get line. */
#define TEXT_GETLINE_MAX (1024 * 1024)

enum proto_result {
    PROTO_NEED_MORE,            /* no complete request buffered */
    PROTO_DONE,                 /* one request handled */
    PROTO_CLOSE                 /* close the connection */
};

/* Handle the first complete request in c->rcurr/c->rbytes, consuming
 * it.  May switch the connection to CONN_NREAD or CONN_SWALLOW. */
enum proto_result proto_text_process(struct conn *c);
/* A value announced by a storage command has been read into c->nr.it. */
void proto_text_complete_nread(struct conn *c);

/* Split line (NUL terminated, no "\r\n") into at most max tokens in place.
 * Returns the count; *more is set when tokens remain after max. */
struct token {
    char *value;                /* NUL terminated token */
    size_t length;              /* its length */
};
int proto_text_tokenize(char *line, struct token *tokens, int max,
                        char **rest);

/* cas_hits / cas_badval / cas_misses after a store in mode `mode` (all
 * protocols). */
#include "items.h"
void proto_count_cas(unsigned clsid, enum store_mode mode,
                     enum store_result r);
/* get/touch hit and miss counters for one key (all protocols). */
void proto_count_get(const struct item *it, enum get_result why,
                     bool touch);

/* Called by `shutdown` (with -A); set by main.  graceful: "shutdown
 * graceful", which saves the memory file (-e) as SIGUSR1 does. */
extern void (*proto_shutdown_fn)(bool graceful);

#endif
