/*
 * conn_io.c - the TLS side of a client connection's I/O (conn_io.h): the
 * handshake of a connection accepted on a -Z listener, then reads and
 * gathered writes through its session.  The plain side is inline in
 * conn_io.h.  Runs on the connection's worker thread only.
 */
#include "memcached.h"
#include "conn_io.h"
#include "conn_internal.h"
#include "log.h"
#include "settings.h"
#include "tls.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>

/* Each worker gathers a reply into its own buffer of ssl_wbuf_size bytes
 * before a TLS write, as memcached does: a write that must wait is
 * retried from the same bytes, so one buffer per thread is enough. */
static __thread char *wbuf;

ssize_t conn_tls_recv(struct conn *c, void *buf, size_t len)
{
    enum tls_want want;
    ssize_t n = tls_read(c->tls, buf, len, &want);
    size_t got;

    if (n <= 0) {
        return n;
    }
    /* One call returns one record at most: take the rest of a record
     * larger than the first read (it is decrypted already) while room
     * lasts. */
    got = (size_t)n;
    while (got < len && tls_pending(c->tls)) {
        n = tls_read(c->tls, (char *)buf + got, len - got, &want);
        if (n <= 0) {
            break;              /* the next call reports it */
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

ssize_t conn_tls_sendv(struct conn *c, struct iovec *iov, int cnt)
{
    size_t size = settings.ssl.wbuf_size;
    enum tls_want want;

    if (wbuf == NULL && size > 0) {
        wbuf = malloc(size);
        if (wbuf == NULL) {
            errno = ENOMEM;
            return -1;
        }
    }
    return tls_writev(c->tls, iov, cnt, wbuf, wbuf == NULL ? 0 : size,
                      &want);
}

void conn_tls_thread_done(void)
{
    free(wbuf);
    wbuf = NULL;
}

int conn_tls_handshake(struct conn *c, short *wait)
{
    enum tls_want want = TLS_WANT_NONE;
    const char *why = NULL;
    int rc = tls_handshake(c->tls, &want, &why);

    if (rc == 1) {
        char desc[128];
        log_debug("<%d TLS established (%s)", c->sfd,
                  tls_describe(c->tls, desc, sizeof(desc)));
        return 1;
    }
    if (rc == 0) {
        *wait = want == TLS_WANT_WRITE ? EV_WRITE : EV_READ;
        return 0;
    }
    tls_server_count_handshake_error();
    log_info("<%d %s: %s", c->sfd, c->addr, why != NULL ? why
                                                         : "TLS handshake");
    return -1;
}

/*
 * -Z: the TLS handshake runs on the worker, one non-blocking step per
 * event, so a slow or silent client holds no thread.  conn_close_idle()
 * closes one that has not finished within TLS_HANDSHAKE_SECS (or
 * idle_timeout, if shorter); a failed one is closed at once.  Both count
 * in ssl_handshake_errors.
 */
bool conn_tls_handshake_step(struct conn *c)
{
    short wait = EV_READ;

    switch (conn_tls_handshake(c, &wait)) {
    case 1:
        conn_set_state(c, CONN_READ);
        c->last_cmd_time = current_time;
        if (!conn_update_event(c, EV_READ | EV_PERSIST)) {
            conn_close(c);
            return false;
        }
        return true;
    case 0:
        if (!conn_update_event(c, (short)(wait | EV_PERSIST))) {
            conn_close(c);
        }
        return false;
    default:
        conn_close(c);
        return false;
    }
}

bool conn_start_tls(struct conn *c)
{
    c->tls = tls_server_new(c->sfd);
    if (c->tls == NULL) {
        tls_server_count_handshake_error();
        log_warn("<%d cannot create a TLS session", c->sfd);
        return false;
    }
    conn_set_state(c, CONN_HANDSHAKE);
    return true;
}
