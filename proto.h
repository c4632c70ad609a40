/*
 * proto.h - what the three protocols share (proto.c): the result of
 * handling one request, line limits, tokens, and the counting of hits
 * and misses that every protocol does the same way.
 */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "items.h"

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

/* One token of a request line (proto_text_tokenize). */
struct token {
    char *value;                /* NUL terminated token */
    size_t length;              /* its length */
};

/* cas_hits / cas_badval / cas_misses after a store in mode `mode` (all
 * protocols). */
void proto_count_cas(unsigned clsid, enum store_mode mode,
                     enum store_result r);
/* get/touch hit and miss counters for one key (all protocols). */
void proto_count_get(const struct item *it, enum get_result why,
                     bool touch);

/* Called by `shutdown` (with -A); set by main.  graceful: "shutdown
 * graceful", which saves the memory file (-e) as SIGUSR1 does. */
extern void (*proto_shutdown_fn)(bool graceful);

#endif
