/*
 * repl_auth.h - the handshake of a replication link: PAIR, AUTH (the
 * HMAC proof of the shared secret) and HELLO.  doc/replication.txt,
 * "Handshake and authentication".
 */
#ifndef REPL_AUTH_H
#define REPL_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct link;

/* Read repl_secret_file: 0, or -1 with a message on stderr. */
int auth_read_secret(const char *path);
/* Whether a secret authenticates the peer. */
bool auth_has_secret(void);
/* A new link: its nonce, and the dialler's PAIR line in l->tx. */
void auth_begin(struct link *l);
/* One line before the stream starts (the handshake, then RESUME): 1, or
 * -1 with l->fault and l->bad set, and the caller closes the link. */
int auth_line(struct link *l, const char *line, size_t len);

#endif
