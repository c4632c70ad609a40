/*
 * tls.h - TLS (OpenSSL) for both users: the replication link (one context
 * from the repl_tls_* options, replication.c) and the client ports (-Z,
 * one context from the ssl_* options, reloaded by refresh_certs; conn_io.c).
 * Sessions, handshakes and I/O are shared; neither user sees OpenSSL.
 * Without OpenSSL every call is a stub that fails.
 */
#ifndef TLS_H
#define TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tls;

/* What a TLS call that could not finish waits for. */
enum tls_want {
    TLS_WANT_NONE,              /* done (or failed: see the return value) */
    TLS_WANT_READ,              /* call again when the socket is readable */
    TLS_WANT_WRITE              /* call again when it is writable */
};

/* --- the replication link ------------------------------------------------ */

/* Build the context from settings.repl_tls_*; 0, or -1 with a message on
 * stderr.  A no-op returning 0 when repl_tls is off. */
int tls_repl_configure(void);
bool tls_repl_enabled(void);
/* Whether the peer's certificate is checked against repl_tls_ca. */
bool tls_repl_verifies_peer(void);
/* A session on connected socket fd; dialled: we are the TLS client. */
struct tls *tls_repl_new(int fd, bool dialled);

/* --- the client ports (-Z) ------------------------------------------------ */

/* Build the client-port context from settings.ssl; 0, or -1 with
 * memcached's message on stderr.  Only called with -Z. */
int tls_server_configure(void);
/* Whether -Z is on and its context built. */
bool tls_server_enabled(void);
/* A server-side session on accepted socket fd (any worker thread), from
 * the context current at this moment; NULL on failure. */
struct tls *tls_server_new(int fd);
/* refresh_certs: reload ssl_chain_cert, ssl_key and ssl_ca_cert into a
 * new context that later connections use; open ones keep theirs.  0, or
 * -1 with memcached's error line (no CRLF) in err. */
int tls_server_refresh(char *err, size_t n);
/* For `stats`: new sessions (ssl_session_cache), failed or timed out
 * handshakes, and when the certificates were last (re)loaded. */
uint64_t tls_server_new_sessions(void);
uint64_t tls_server_handshake_errors(void);
void tls_server_count_handshake_error(void);
uint32_t tls_server_cert_time(void);
/* "tlsv1.2" for ssl_min_version 0..3. */
const char *tls_version_name(int v);

/* --- sessions (either user) ----------------------------------------------- */

/* Close notify (when the handshake was done), then free; NULL is a
 * no-op. */
void tls_free(struct tls *t);

/* Drive the handshake: 1 done, 0 not yet (*want says on what), -1 failed
 * (why: a short reason for the log), -2 the connection ended before the
 * peer sent a byte (a relay with nothing behind it, a peer killed
 * meanwhile): a network failure, not a TLS one. */
int tls_handshake(struct tls *t, enum tls_want *want, const char **why);

/* Like send(2)/recv(2) on a non-blocking socket: bytes moved (> 0), or 0
 * for a clean close by the peer (read only), or -1 with errno EAGAIN and
 * *want set when it must wait, or -1 with another errno on failure.
 * After a write that must wait, the next write must start with the same
 * bytes (it may be longer). */
ssize_t tls_write(struct tls *t, const void *buf, size_t len,
                  enum tls_want *want);
ssize_t tls_read(struct tls *t, void *buf, size_t len, enum tls_want *want);
/* Write up to wbuf_size bytes of iov[0..cnt) as one TLS write, gathered
 * into the caller's buffer wbuf (the client ports: ssl_wbuf_size). */
ssize_t tls_writev(struct tls *t, const struct iovec *iov, int cnt,
                   char *wbuf, size_t wbuf_size, enum tls_want *want);
/* Decrypted bytes already buffered inside the session (a record larger
 * than the last read): the socket will not signal them. */
bool tls_pending(struct tls *t);

/* Key material exported from the session (RFC 5705), 32 bytes as 64 hex
 * digits, so that the shared-secret proof is bound to this TLS channel
 * and cannot be relayed by a man in the middle.  False if unavailable. */
bool tls_channel_id(struct tls *t, char out[65]);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for stats and logs. */
const char *tls_describe(struct tls *t, char *buf, size_t n);

#endif
