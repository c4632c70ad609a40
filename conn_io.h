/*
 * conn_io.h - how a client connection moves bytes: read(2) and sendmsg(2)
 * for a plain one, the connection's TLS session (tls.c) for one accepted
 * on a -Z listener.  conn.c calls only these.  The choice is one test of
 * c->tls, inline, so that a plain connection pays nothing for TLS.
 */
#ifndef CONN_IO_H
#define CONN_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"

/* The TLS halves (conn_io.c): same contract as the plain calls below.
 * conn_tls_recv() fills len or leaves nothing decrypted in the session,
 * so a caller that reads again only after a full read (conn.c) never
 * waits on the socket for bytes already inside OpenSSL. */
ssize_t conn_tls_recv(struct conn *c, void *buf, size_t len);
ssize_t conn_tls_sendv(struct conn *c, struct iovec *iov, int cnt);

/* A worker thread is ending: free its TLS write buffer. */
void conn_tls_thread_done(void);

/* Drive the TLS handshake of a fresh -Z connection (CONN_HANDSHAKE):
 * 1 done, 0 not yet (*wait: EV_READ or EV_WRITE), -1 failed (counted in
 * ssl_handshake_errors and logged at -v; the caller closes). */
int conn_tls_handshake(struct conn *c, short *wait);

/* Like read(2): bytes, 0 at end of stream, -1 with errno (EAGAIN: wait
 * for EV_READ). */
static inline ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
    if (__builtin_expect(c->tls == NULL, 1)) {
        return read(c->sfd, buf, len);
    }
    return conn_tls_recv(c, buf, len);
}

/* Like sendmsg(2) of iov[0..cnt): bytes, or -1 with errno (EAGAIN: wait
 * for EV_WRITE). */
static inline ssize_t conn_sendv(struct conn *c, struct iovec *iov, int cnt)
{
    if (__builtin_expect(c->tls == NULL, 1)) {
        struct msghdr msg = {0};
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)cnt;
        return sendmsg(c->sfd, &msg, MSG_NOSIGNAL);
    }
    return conn_tls_sendv(c, iov, cnt);
}

#endif
