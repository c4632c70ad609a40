/*
 * repl_tls.c - TLS sessions for the replication link.  One SSL_CTX for
 * both directions (the node is TLS server on links it accepts and TLS
 * client on links it dials), built once at start from repl_tls_cert,
 * repl_tls_key and optionally repl_tls_ca.  With a CA both sides demand
 * and verify the other's certificate.  Only the replication thread calls
 * into a session, so no locking is needed here.
 */
#include "memcached.h"
#include "repl_tls.h"
#include "settings.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ENABLE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define CHANNEL_LABEL "EXPORTER-paircached-replication-auth"

struct repl_tls {
    SSL *ssl;
};

static SSL_CTX *ctx;

static void print_ssl_errors(const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    if (e == 0) {
        fprintf(stderr, "%s %s: failed\n", what, path);
    }
    for (; e != 0; e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "%s %s: %s\n", what, path, buf);
    }
}

int repl_tls_configure(void)
{
    if (!settings.repl_tls) {
        return 0;
    }
    if (settings.repl_tls_cert == NULL || settings.repl_tls_key == NULL) {
        fprintf(stderr, "repl_tls=1 needs repl_tls_cert and repl_tls_key\n");
        return -1;
    }
    ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        print_ssl_errors("TLS context", "");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Partial writes keep the outbound queue simple; the queue may move
     * (realloc) between a write that must wait and its retry. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(ctx, settings.repl_tls_cert) != 1) {
        print_ssl_errors("repl_tls_cert", settings.repl_tls_cert);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, settings.repl_tls_key,
                                    SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        print_ssl_errors("repl_tls_key", settings.repl_tls_key);
        return -1;
    }
    if (settings.repl_tls_ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, settings.repl_tls_ca,
                                          NULL) != 1) {
            print_ssl_errors("repl_tls_ca", settings.repl_tls_ca);
            return -1;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
                                SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return 0;
}

bool repl_tls_enabled(void)
{
    return ctx != NULL;
}

bool repl_tls_verifies_peer(void)
{
    return ctx != NULL && settings.repl_tls_ca != NULL;
}

struct repl_tls *repl_tls_new(int fd, bool dialled)
{
    struct repl_tls *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return NULL;
    }
    t->ssl = SSL_new(ctx);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1) {
        repl_tls_free(t);
        return NULL;
    }
    if (dialled) {
        SSL_set_connect_state(t->ssl);
    } else {
        SSL_set_accept_state(t->ssl);
    }
    return t;
}

void repl_tls_free(struct repl_tls *t)
{
    if (t == NULL) {
        return;
    }
    if (t->ssl != NULL) {
        SSL_free(t->ssl);
    }
    free(t);
}

/* Map the outcome of an SSL call that returned rc <= 0. */
static int classify(struct repl_tls *t, int rc, enum repl_tls_want *want)
{
    int err = SSL_get_error(t->ssl, rc);

    *want = TLS_WANT_NONE;
    switch (err) {
    case SSL_ERROR_WANT_READ:
        *want = TLS_WANT_READ;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *want = TLS_WANT_WRITE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0) {
            errno = ECONNRESET;
        }
        return -1;
    default:
        errno = EPROTO;
        return -1;
    }
}

int repl_tls_handshake(struct repl_tls *t, enum repl_tls_want *want,
                       const char **why)
{
    static __thread char reason[200];
    int rc;

    ERR_clear_error();
    errno = 0;
    rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        *want = TLS_WANT_NONE;
        return 1;
    }
    if (classify(t, rc, want) < 0 && *want != TLS_WANT_NONE) {
        return 0;
    }
    if (BIO_number_read(SSL_get_rbio(t->ssl)) == 0) {
        /* Whatever OpenSSL makes of it (3.0 reports an unexpected EOF
         * as a protocol error), no TLS was spoken. */
        /* classify() leaves ECONNRESET for a plain EOF and EPROTO for
         * OpenSSL's own verdict; any other errno is the socket's. */
        snprintf(reason, sizeof(reason), "%s before the TLS handshake",
                 errno != 0 && errno != ECONNRESET && errno != EPROTO
                     ? strerror(errno) : "connection closed");
        ERR_clear_error();
        *why = reason;
        return -2;
    }
    {
        long v = SSL_get_verify_result(t->ssl);
        unsigned long e = ERR_peek_last_error();
        if (v != X509_V_OK) {
            snprintf(reason, sizeof(reason), "TLS handshake: certificate: %s",
                     X509_verify_cert_error_string(v));
        } else if (e != 0) {
            char buf[160];
            ERR_error_string_n(e, buf, sizeof(buf));
            snprintf(reason, sizeof(reason), "TLS handshake: %s", buf);
        } else {
            snprintf(reason, sizeof(reason), "TLS handshake: %s",
                     errno ? strerror(errno) : "connection closed");
        }
    }
    ERR_clear_error();
    *why = reason;
    return -1;
}

ssize_t repl_tls_write(struct repl_tls *t, const void *buf, size_t len,
                       enum repl_tls_want *want)
{
    size_t done = 0;
    int rc;

    ERR_clear_error();
    errno = 0;
    *want = TLS_WANT_NONE;
    rc = SSL_write_ex(t->ssl, buf, len, &done);
    if (rc == 1) {
        return (ssize_t)done;
    }
    if (classify(t, rc, want) == 0) {
        errno = EPIPE;
    }
    ERR_clear_error();
    return -1;
}

ssize_t repl_tls_read(struct repl_tls *t, void *buf, size_t len,
                      enum repl_tls_want *want)
{
    size_t done = 0;
    int rc;

    ERR_clear_error();
    errno = 0;
    *want = TLS_WANT_NONE;
    rc = SSL_read_ex(t->ssl, buf, len, &done);
    if (rc == 1) {
        return (ssize_t)done;
    }
    rc = classify(t, rc, want);
    ERR_clear_error();
    return rc;
}

bool repl_tls_channel_id(struct repl_tls *t, char out[65])
{
    unsigned char km[32];

    if (SSL_export_keying_material(t->ssl, km, sizeof(km), CHANNEL_LABEL,
                                   strlen(CHANNEL_LABEL), NULL, 0, 0) != 1) {
        ERR_clear_error();
        return false;
    }
    util_hex(km, sizeof(km), out);
    return true;
}

const char *repl_tls_describe(struct repl_tls *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s %s", SSL_get_version(t->ssl),
             SSL_get_cipher_name(t->ssl));
    return buf;
}

#else /* !ENABLE_TLS */

struct repl_tls {
    int unused;
};

int repl_tls_configure(void)
{
    if (settings.repl_tls) {
        fprintf(stderr, "repl_tls needs OpenSSL; this build has none\n");
        return -1;
    }
    return 0;
}

bool repl_tls_enabled(void)
{
    return false;
}

bool repl_tls_verifies_peer(void)
{
    return false;
}

struct repl_tls *repl_tls_new(int fd, bool dialled)
{
    (void)fd;
    (void)dialled;
    return NULL;
}

void repl_tls_free(struct repl_tls *t)
{
    (void)t;
}

int repl_tls_handshake(struct repl_tls *t, enum repl_tls_want *want,
                       const char **why)
{
    (void)t;
    *want = TLS_WANT_NONE;
    *why = "no TLS in this build";
    return -1;
}

ssize_t repl_tls_write(struct repl_tls *t, const void *buf, size_t len,
                       enum repl_tls_want *want)
{
    (void)t;
    (void)buf;
    (void)len;
    *want = TLS_WANT_NONE;
    errno = EPROTO;
    return -1;
}

ssize_t repl_tls_read(struct repl_tls *t, void *buf, size_t len,
                      enum repl_tls_want *want)
{
    return repl_tls_write(t, buf, len, want);
}

bool repl_tls_channel_id(struct repl_tls *t, char out[65])
{
    (void)t;
    out[0] = '\0';
    return false;
}

const char *repl_tls_describe(struct repl_tls *t, char *buf, size_t n)
{
    (void)t;
    snprintf(buf, n, "none");
    return buf;
}

#endif
