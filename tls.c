/*
 * tls.c - TLS sessions over OpenSSL for the two users: the replication
 * link (one SSL_CTX for both directions from repl_tls_*: the node is TLS
 * server on links it accepts and client on links it dials; with a CA both
 * sides verify the other) and the client ports of -Z (one server SSL_CTX
 * from the ssl_* options, replaced whole by refresh_certs).  It knows
 * nothing of records, links, connections or events.
 */
#include "memcached.h"
#include "tls.h"
#include "settings.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#ifdef ENABLE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define CHANNEL_LABEL "EXPORTER-paircached-replication-auth"

struct tls {
    SSL *ssl;                   /* the OpenSSL session */
    bool server_port;           /* a client-port session (-Z) */
};

static SSL_CTX *ctx;            /* the replication link's */

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

int tls_repl_configure(void)
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

bool tls_repl_enabled(void)
{
    return ctx != NULL;
}

bool tls_repl_verifies_peer(void)
{
    return ctx != NULL && settings.repl_tls_ca != NULL;
}

struct tls *tls_repl_new(int fd, bool dialled)
{
    struct tls *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return NULL;
    }
    t->ssl = SSL_new(ctx);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1) {
        tls_free(t);
        return NULL;
    }
    if (dialled) {
        SSL_set_connect_state(t->ssl);
    } else {
        SSL_set_accept_state(t->ssl);
    }
    return t;
}

void tls_free(struct tls *t)
{
    if (t == NULL) {
        return;
    }
    if (t->ssl != NULL) {
        /* A client-port session says goodbye as memcached does (one try,
         * the socket is non-blocking); not after a failed handshake. */
        if (t->server_port && SSL_is_init_finished(t->ssl)) {
            (void)SSL_shutdown(t->ssl);
            ERR_clear_error();
        }
        SSL_free(t->ssl);
    }
    free(t);
}

/*
 * The error queue.  SSL_get_error() is only right when the thread's
 * OpenSSL error queue held nothing before the call, and clearing it
 * costs hundreds of instructions even when empty (it was a third of
 * the server's TLS cost per request).  So the queue is kept empty
 * instead: every path that can leave an error in it (a failed
 * handshake, read, write, context or session set-up) clears it right
 * there, a finished handshake too, and reads and writes do not clear it
 * first.  WANT_READ/WANT_WRITE and a clean close leave nothing queued.
 */

/* Map the outcome of an SSL call that returned rc <= 0. */
static int classify(struct tls *t, int rc, enum tls_want *want)
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

int tls_handshake(struct tls *t, enum tls_want *want,
                       const char **why)
{
    static __thread char reason[200];
    int rc;

    ERR_clear_error();
    errno = 0;
    rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        *want = TLS_WANT_NONE;
        ERR_clear_error();      /* once per session: start empty */
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

ssize_t tls_write(struct tls *t, const void *buf, size_t len,
                       enum tls_want *want)
{
    size_t done = 0;
    int rc;

    errno = 0;
    *want = TLS_WANT_NONE;
    rc = SSL_write_ex(t->ssl, buf, len, &done);
    if (rc == 1) {
        return (ssize_t)done;
    }
    if (classify(t, rc, want) == 0) {
        errno = EPIPE;
    }
    if (*want == TLS_WANT_NONE) {
        ERR_clear_error();      /* see "The error queue" above */
    }
    return -1;
}

ssize_t tls_read(struct tls *t, void *buf, size_t len,
                      enum tls_want *want)
{
    size_t done = 0;
    int rc;

    errno = 0;
    *want = TLS_WANT_NONE;
    rc = SSL_read_ex(t->ssl, buf, len, &done);
    if (rc == 1) {
        return (ssize_t)done;
    }
    rc = classify(t, rc, want);
    if (*want == TLS_WANT_NONE && rc != 0) {
        ERR_clear_error();      /* see "The error queue" above */
    }
    return rc;
}

bool tls_channel_id(struct tls *t, char out[65])
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

const char *tls_describe(struct tls *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s %s", SSL_get_version(t->ssl),
             SSL_get_cipher_name(t->ssl));
    return buf;
}


/* --- the client ports ------------------------------------------------------
 *
 * One server context, built at start from settings.ssl and built again,
 * whole, by refresh_certs.  Workers take a reference to the current one
 * under ctx_lock to create each session, so a refresh never changes a
 * context in use: open connections keep the certificate they were
 * accepted with, as in memcached.  Counters are updated atomically by any
 * worker.
 */
#define SESSION_ID_CONTEXT "paircached"

static SSL_CTX *server_ctx;     /* current client-port context */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t new_sessions;   /* ssl_new_sessions */
static uint64_t handshake_errors; /* ssl_handshake_errors */
static uint32_t cert_time;      /* last successful (re)load */

static const int proto_versions[] = {
    TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION
};

const char *tls_version_name(int v)
{
    static const char *const names[] = {
        "tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3"
    };
    return v >= 0 && v <= 3 ? names[v] : "unknown";
}

static int new_session_cb(SSL *s, SSL_SESSION *sess)
{
    (void)s;
    (void)sess;
    __atomic_add_fetch(&new_sessions, 1, __ATOMIC_RELAXED);
    return 0;                   /* we keep no reference to sess */
}

/* The first queued OpenSSL error as text ("" when none), queue drained. */
static const char *ssl_error_text(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();

    buf[0] = '\0';
    if (e != 0) {
        ERR_error_string_n(e, buf, n);
    }
    ERR_clear_error();
    return buf;
}

/* Certificates and key into c, with memcached's error lines. */
static int load_certs(SSL_CTX *c, char *err, size_t n)
{
    const struct settings_ssl *s = &settings.ssl;
    char why[256];

    if (SSL_CTX_use_certificate_chain_file(c, s->chain_cert) != 1) {
        snprintf(err, n, "Error loading the certificate chain: %s : %s",
                 s->chain_cert ? s->chain_cert : "(null)",
                 ssl_error_text(why, sizeof(why)));
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(c, s->key, s->keyformat) != 1) {
        snprintf(err, n, "Error loading the key: %s : %s",
                 s->key ? s->key : "(null)",
                 ssl_error_text(why, sizeof(why)));
        return -1;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        snprintf(err, n, "Error validating the certificate: %s",
                 ssl_error_text(why, sizeof(why)));
        return -1;
    }
    if (s->ca_cert != NULL) {
        STACK_OF(X509_NAME) *names;
        if (SSL_CTX_load_verify_locations(c, s->ca_cert, NULL) != 1) {
            snprintf(err, n, "Error loading the CA certificate: %s : %s",
                     s->ca_cert, ssl_error_text(why, sizeof(why)));
            return -1;
        }
        names = SSL_load_client_CA_file(s->ca_cert);
        if (names != NULL) {
            SSL_CTX_set_client_CA_list(c, names);
        }
    }
    return 0;
}

/* A complete server context from settings.ssl, or NULL with err set. */
static SSL_CTX *build_server_ctx(char *err, size_t n)
{
    const struct settings_ssl *s = &settings.ssl;
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());

    if (c == NULL) {
        snprintf(err, n, "Error creating the TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c, proto_versions[s->min_version & 3]);
    if (load_certs(c, err, n) != 0) {
        goto fail;
    }
    SSL_CTX_set_verify(c, s->verify_mode, NULL);
    if (s->ciphers != NULL && SSL_CTX_set_cipher_list(c, s->ciphers) != 1) {
        snprintf(err, n, "Error setting the provided cipher(s): %s",
                 s->ciphers);
        goto fail;
    }
    if (s->session_cache) {
        SSL_CTX_sess_set_new_cb(c, new_session_cb);
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
        SSL_CTX_set_session_id_context(c,
            (const unsigned char *)SESSION_ID_CONTEXT,
            sizeof(SESSION_ID_CONTEXT) - 1);
    } else {
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
        /* Nor stateless tickets: "disabled" means no resumption. */
        SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(c, 0);
    }
    if (s->kernel_tls) {
#ifdef SSL_OP_ENABLE_KTLS
        SSL_CTX_set_options(c, SSL_OP_ENABLE_KTLS);
#else
        snprintf(err, n, "Kernel TLS offload is not available");
        goto fail;
#endif
    }
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Idle connections give their record buffers back; a write that must
     * wait is retried from a gathered copy (tls_writev). */
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS |
                        SSL_MODE_ENABLE_PARTIAL_WRITE |
                        SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    ERR_clear_error();
    return c;
fail:
    ERR_clear_error();
    SSL_CTX_free(c);
    return NULL;
}

int tls_server_configure(void)
{
    char err[1024];

    if (settings.port == 0) {
        fprintf(stderr, "ERROR: You cannot enable SSL without a TCP port.\n");
        return -1;
    }
    server_ctx = build_server_ctx(err, sizeof(err));
    if (server_ctx == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    cert_time = current_time;
    return 0;
}

bool tls_server_enabled(void)
{
    return server_ctx != NULL;
}

struct tls *tls_server_new(int fd)
{
    struct tls *t = calloc(1, sizeof(*t));
    SSL_CTX *c;

    if (t == NULL) {
        return NULL;
    }
    t->server_port = true;
    pthread_mutex_lock(&ctx_lock);
    c = server_ctx;
    if (c != NULL) {
        SSL_CTX_up_ref(c);
    }
    pthread_mutex_unlock(&ctx_lock);
    if (c == NULL) {
        free(t);
        return NULL;
    }
    t->ssl = SSL_new(c);
    SSL_CTX_free(c);            /* the session holds its own reference */
    if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1) {
        ERR_clear_error();
        tls_free(t);
        return NULL;
    }
    SSL_set_accept_state(t->ssl);
    return t;
}

int tls_server_refresh(char *err, size_t n)
{
    SSL_CTX *fresh, *old;

    if (server_ctx == NULL) {
        snprintf(err, n, "Error TLS not enabled");
        return -1;
    }
    fresh = build_server_ctx(err, n);
    if (fresh == NULL) {
        return -1;
    }
    pthread_mutex_lock(&ctx_lock);
    old = server_ctx;
    server_ctx = fresh;
    pthread_mutex_unlock(&ctx_lock);
    SSL_CTX_free(old);          /* freed when its last session is */
    __atomic_store_n(&cert_time, current_time, __ATOMIC_RELAXED);
    return 0;
}

uint64_t tls_server_new_sessions(void)
{
    return __atomic_load_n(&new_sessions, __ATOMIC_RELAXED);
}

uint64_t tls_server_handshake_errors(void)
{
    return __atomic_load_n(&handshake_errors, __ATOMIC_RELAXED);
}

void tls_server_count_handshake_error(void)
{
    __atomic_add_fetch(&handshake_errors, 1, __ATOMIC_RELAXED);
}

uint32_t tls_server_cert_time(void)
{
    return __atomic_load_n(&cert_time, __ATOMIC_RELAXED);
}

ssize_t tls_writev(struct tls *t, const struct iovec *iov, int cnt,
                   char *wbuf, size_t wbuf_size, enum tls_want *want)
{
    size_t used = 0;
    int i;

    /* One piece, or a first piece as large as the buffer: no copy. */
    if (cnt == 1 || iov[0].iov_len >= wbuf_size) {
        return tls_write(t, iov[0].iov_base, iov[0].iov_len, want);
    }
    for (i = 0; i < cnt && used < wbuf_size; i++) {
        size_t k = iov[i].iov_len;
        if (k > wbuf_size - used) {
            k = wbuf_size - used;
        }
        memcpy(wbuf + used, iov[i].iov_base, k);
        used += k;
    }
    return tls_write(t, wbuf, used, want);
}

bool tls_pending(struct tls *t)
{
    return SSL_pending(t->ssl) > 0;
}

#else /* !ENABLE_TLS */

struct tls {
    int unused;
};

int tls_repl_configure(void)
{
    if (settings.repl_tls) {
        fprintf(stderr, "repl_tls needs OpenSSL; this build has none\n");
        return -1;
    }
    return 0;
}

bool tls_repl_enabled(void)
{
    return false;
}

bool tls_repl_verifies_peer(void)
{
    return false;
}

struct tls *tls_repl_new(int fd, bool dialled)
{
    (void)fd;
    (void)dialled;
    return NULL;
}

void tls_free(struct tls *t)
{
    (void)t;
}

int tls_handshake(struct tls *t, enum tls_want *want,
                       const char **why)
{
    (void)t;
    *want = TLS_WANT_NONE;
    *why = "no TLS in this build";
    return -1;
}

ssize_t tls_write(struct tls *t, const void *buf, size_t len,
                       enum tls_want *want)
{
    (void)t;
    (void)buf;
    (void)len;
    *want = TLS_WANT_NONE;
    errno = EPROTO;
    return -1;
}

ssize_t tls_read(struct tls *t, void *buf, size_t len,
                      enum tls_want *want)
{
    return tls_write(t, buf, len, want);
}

bool tls_channel_id(struct tls *t, char out[65])
{
    (void)t;
    out[0] = '\0';
    return false;
}

const char *tls_describe(struct tls *t, char *buf, size_t n)
{
    (void)t;
    snprintf(buf, n, "none");
    return buf;
}

int tls_server_configure(void)
{
    fprintf(stderr, "-Z needs OpenSSL; this build has none\n");
    return -1;
}

bool tls_server_enabled(void)
{
    return false;
}

struct tls *tls_server_new(int fd)
{
    (void)fd;
    return NULL;
}

int tls_server_refresh(char *err, size_t n)
{
    snprintf(err, n, "Error TLS not enabled");
    return -1;
}

uint64_t tls_server_new_sessions(void)
{
    return 0;
}

uint64_t tls_server_handshake_errors(void)
{
    return 0;
}

void tls_server_count_handshake_error(void)
{
}

uint32_t tls_server_cert_time(void)
{
    return 0;
}

const char *tls_version_name(int v)
{
    static const char *const names[] = {
        "tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3"
    };
    return v >= 0 && v <= 3 ? names[v] : "unknown";
}

ssize_t tls_writev(struct tls *t, const struct iovec *iov, int cnt,
                   char *wbuf, size_t wbuf_size, enum tls_want *want)
{
    (void)iov;
    (void)cnt;
    (void)wbuf;
    (void)wbuf_size;
    return tls_write(t, NULL, 0, want);
}

bool tls_pending(struct tls *t)
{
    (void)t;
    return false;
}

#endif
