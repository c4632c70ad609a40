/*
 * proto_text_admin.h - the text protocol's server commands (stats,
 * flush_all, verbosity, lru, slabs, watch...), proto_text_admin.c.
 */
#ifndef PROTO_TEXT_ADMIN_H
#define PROTO_TEXT_ADMIN_H

#include <stdbool.h>

#include "proto.h"

struct conn;

/* Run t[0] if it is one of them; false when it is not (or has the
 * wrong number of tokens). */
bool proto_text_admin(struct conn *c, struct token *t, int ntok);

#endif
