/*
 * repl_tls.h - TLS for the replication link (OpenSSL).  Owns the SSL
 * context built from the repl_tls_* options and the per-link TLS session;
 * replication.c calls these instead of send/recv when TLS is on.  It does
 * not know about records, links or events.  See doc/replication.txt.
 */
#ifndef REPL_TLS_H
#define REPL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct repl_tls;

/* What a TLS call that could not finish waits for. */
enum repl_tls_want {
    TLS_WANT_NONE,              /* done (or failed: see the return value) */
    TLS_WANT_READ,              /* call again when the socket is readable */
    TLS_WANT_WRITE              /* call again when it is writable */
};

/* Build the context from settings.repl_tls_*; 0, or -1 with a message on
 * stderr.  A no-op returning 0 when repl_tls is off. */
int repl_tls_configure(void);
bool repl_tls_enabled(void);
/* Whether the peer's certificate is checked against repl_tls_ca. */
bool repl_tls_verifies_peer(void);

/* A session on connected socket fd; dialled: we are the TLS client. */
struct repl_tls *repl_tls_new(int fd, bool dialled);
void repl_tls_free(struct repl_tls *t);

/* Drive the handshake: 1 done, 0 not yet (*want says on what), -1 failed
 * (why: a short reason for the log), -2 the connection ended before the
 * peer sent a byte (a relay with nothing behind it, a peer killed
 * meanwhile): a network failure, not a TLS one. */
int repl_tls_handshake(struct repl_tls *t, enum repl_tls_want *want,
                       const char **why);

/* Like send(2)/recv(2) on a non-blocking socket: bytes moved (> 0), or 0
 * for a clean close by the peer (read only), or -1 with errno EAGAIN and
 * *want set when it must wait, or -1 with another errno on failure. */
ssize_t repl_tls_write(struct repl_tls *t, const void *buf, size_t len,
                       enum repl_tls_want *want);
ssize_t repl_tls_read(struct repl_tls *t, void *buf, size_t len,
                      enum repl_tls_want *want);

/* Key material exported from the session (RFC 5705), 32 bytes as 64 hex
 * digits, so that the shared-secret proof is bound to this TLS channel
 * and cannot be relayed by a man in the middle.  False if unavailable. */
bool repl_tls_channel_id(struct repl_tls *t, char out[65]);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for stats and logs. */
const char *repl_tls_describe(struct repl_tls *t, char *buf, size_t n);

#endif
