/*
 * proto_meta.h - memcached's meta commands (mg ms md ma mn me), which
 * share the text protocol's framing.
 */
#ifndef PROTO_META_H
#define PROTO_META_H

#include <stdbool.h>

#include "proto.h"

struct conn;

/* Handle a meta command line already split into tokens (tokens[0] is the
 * command).  Returns false if tokens[0] is not a meta command. */
bool proto_meta_dispatch(struct conn *c, struct token *t, int ntok);
/* The data block of an ms has been read into c->nr.it. */
void proto_meta_complete_nread(struct conn *c);

#endif
