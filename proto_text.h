/*
 * proto_text.h - the text protocol (and, through proto_meta.c, the meta
 * commands that share its framing).
 */
#ifndef PROTO_TEXT_H
#define PROTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

struct conn;

/* Handle the first complete request in c->rcurr/c->rbytes, consuming
 * it.  May switch the connection to CONN_NREAD or CONN_SWALLOW. */
enum proto_result proto_text_process(struct conn *c);
/* A value announced by a storage command has been read into c->nr.it. */
void proto_text_complete_nread(struct conn *c);

/* Split line (NUL terminated, no "\r\n") into at most max tokens in place
 * (struct token: proto.h).  Returns the count; *rest is set when tokens
 * remain after max. */
int proto_text_tokenize(char *line, struct token *tokens, int max,
                        char **rest);

#endif
