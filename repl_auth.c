/*
 * repl_auth.c - the handshake of a new link (protocol 2): PAIR, AUTH and
 * HELLO, the HMAC proof of the shared secret, nonces, and the secret
 * file.  Up to the peer's HELLO; keeping the link is replication.c's
 * business, RESUME repl_walk.c's.  doc/replication.txt, "Handshake".
 */
#include "memcached.h"
#include "repl_auth.h"
#include "repl_apply.h"
#include "repl_codec.h"
#include "repl_link.h"
#include "repl_walk.h"
#include "log.h"
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef ENABLE_TLS
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#endif

#define EVP_MAX_MD_SIZE_COMPAT 64   /* largest HMAC we print */

static char *secret;            /* from repl_secret_file */
static size_t secret_len;

bool auth_has_secret(void)
{
    return secret != NULL;
}


int auth_read_secret(const char *path)
{
    char line[1024];
    struct stat st;
    FILE *f = fopen(path, "r");
    size_t n;

#ifndef ENABLE_TLS
    fprintf(stderr, "repl_secret_file needs OpenSSL; this build has none\n");
    return -1;
#endif
    if (f == NULL) {
        fprintf(stderr, "cannot read repl_secret_file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    /* Like ssh with a private key: a secret others can read is no
     * secret, so refuse to start rather than warn. */
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0077)) {
        fclose(f);
        fprintf(stderr, "repl_secret_file %s has mode %04o: it must not be "
                "accessible by group or others (chmod 600 %s)\n", path,
                (unsigned)(st.st_mode & 07777), path);
        return -1;
    }
    if (fgets(line, sizeof(line), f) == NULL) {
        fclose(f);
        fprintf(stderr, "repl_secret_file %s is empty\n", path);
        return -1;
    }
    fclose(f);
    n = strcspn(line, "\r\n");
    if (n < 16) {
        fprintf(stderr, "repl_secret_file %s: the secret must have at least "
                        "16 characters\n", path);
        return -1;
    }
    secret = malloc(n);
    if (secret == NULL) {
        return -1;
    }
    memcpy(secret, line, n);
    secret_len = n;
    return 0;
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char raw[64];
    size_t i;

    if (nbytes > sizeof(raw) ||
        getrandom(raw, nbytes, 0) != (ssize_t)nbytes) {
        /* getrandom on Linux >= 3.17 does not fail for small sizes; fall
         * back to the clock so that nonces still differ. */
        uint64_t t = util_mono_us() ^ (uint64_t)getpid();
        for (i = 0; i < nbytes && i < sizeof(raw); i++) {
            raw[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)i;
        }
    }
    util_hex(raw, nbytes, out);
}

void auth_begin(struct link *l)
{
    char line[REC_LINE_MAX];

    random_hex(l->nonce, 32);
    if (l->dialled) {
        /* The dialler speaks first; the acceptor says nothing until it
         * has the dialler's PAIR. */
        rbuf_add(&l->tx, line,
                 repl_fmt_pair(line, REPL_PROTO_VERSION, l->nonce));
    }
}

/*
 * The proof of the secret.  Each side proves in its own direction, over
 * both nonces, its own first:
 *
 *   dialler:  HMAC-SHA256(secret, "paircached-v2|dial|"   nd "|" na [ch])
 *   acceptor: HMAC-SHA256(secret, "paircached-v2|accept|" na "|" nd [ch])
 *
 * ch is "|" and the TLS exporter's 64 hex digits over TLS, else empty.
 * The direction label means no proof can be reflected as the other
 * side's; both fresh nonces mean none can be replayed; and the acceptor
 * sends its proof only after checking the dialler's, so nobody gets an
 * acceptor's proof without first presenting a valid dialler's.  out has
 * 2 * EVP_MAX_MD_SIZE_COMPAT + 1 bytes; without a secret it is "none".
 */
static void hmac_hex(bool dial, const char *mine, const char *theirs,
                     const char *channel, char *out)
{
#ifdef ENABLE_TLS
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    char msg[256];
    int n;

    if (secret == NULL) {
        snprintf(out, 2 * EVP_MAX_MD_SIZE_COMPAT + 1, "none");
        return;
    }
    n = snprintf(msg, sizeof(msg), "paircached-v2|%s|%s|%s%s%s",
                 dial ? "dial" : "accept", mine, theirs,
                 channel[0] ? "|" : "", channel);
    HMAC(EVP_sha256(), secret, (int)secret_len, (unsigned char *)msg,
         (size_t)n, mac, &mlen);
    util_hex(mac, mlen < EVP_MAX_MD_SIZE_COMPAT ? mlen
                                                : EVP_MAX_MD_SIZE_COMPAT, out);
#else
    (void)dial;
    (void)mine;
    (void)theirs;
    (void)channel;
    snprintf(out, 2 * EVP_MAX_MD_SIZE_COMPAT + 1, "none");
#endif
}

/* Compare in constant time: a[0..la) against the string b. */
static bool same_secret_proof(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b), i;
    unsigned char d = (unsigned char)(la != lb);

    for (i = 0; i < la && i < lb; i++) {
        d |= (unsigned char)(a[i] ^ b[i]);
    }
    return d == 0;
}



/* Best effort, before closing: a line the peer can read (or tcpdump). */
static void send_now(struct link *l, const char *line, size_t n)
{
    (void)repl_io_send(l->fd, l->tls, line, n);
}

/* PAIR <version> <nonce>: the dialler's first line, or the acceptor's
 * answer to it.  An old or newer peer gets a clear error. */
static int hs_pair(struct link *l, const struct field *f, int nf)
{
    char line[REC_LINE_MAX];
    uint64_t version;

    if (nf < 2 || !repl_field_is(&f[0], "PAIR") ||
        !repl_field_u64(&f[1], &version)) {
        return link_refuse(l, FAULT_PROTOCOL, "no PAIR line first");
    }
    if (version != REPL_PROTO_VERSION) {
        static char why[80];
        snprintf(why, sizeof(why), "the peer speaks replication protocol "
                 "%llu, this node %d", (unsigned long long)version,
                 REPL_PROTO_VERSION);
        if (!l->dialled) {
            send_now(l, line,
                     repl_fmt_version_refused(line, REPL_PROTO_VERSION));
        }
        return link_refuse(l, FAULT_MISMATCH, why);
    }
    if (nf != 3 || !repl_field_hex64(&f[2])) {
        return link_refuse(l, FAULT_PROTOCOL, "a malformed PAIR line");
    }
    memcpy(l->peer_nonce, f[2].p, 64);
    l->peer_nonce[64] = '\0';
    if (l->dialled) {
        char mac[2 * EVP_MAX_MD_SIZE_COMPAT + 1];
        hmac_hex(true, l->nonce, l->peer_nonce, l->channel, mac);
        send_ctl(l, line, repl_fmt_auth(line, mac));
    } else {
        send_ctl(l, line, repl_fmt_pair(line, REPL_PROTO_VERSION, l->nonce));
    }
    link_hs_set_state(l, HS_WAIT_AUTH);
    return 1;
}

/* What this node tells a peer that proved the secret. */
static void send_hello(struct link *l)
{
    const struct repl_hello h = {
        .run_id = repl_run_id,
        .node_id = repl_node_id,
        .wall_ms = util_now_ms(),
        .item_size_max = (uint64_t)settings.item_size_max,
        .maxbytes = (uint64_t)settings.maxbytes,
        .no_evict = !settings.evict_to_free,
    };
    char line[REC_LINE_MAX];

    send_ctl(l, line, repl_fmt_hello(line, &h));
}

/* AUTH <proof>: the dialler's first (checked by the acceptor, which then
 * proves itself and says HELLO), then the acceptor's (checked by the
 * dialler, which then says HELLO).  A bad or missing proof closes the
 * link with nothing more sent. */
static int hs_auth(struct link *l, const struct field *f, int nf)
{
    char want[2 * EVP_MAX_MD_SIZE_COMPAT + 1];

    if (nf != 2 || !repl_field_is(&f[0], "AUTH")) {
        return link_refuse(l, FAULT_AUTH, "no AUTH line after PAIR");
    }
    if (secret == NULL && !repl_field_is(&f[1], "none")) {
        return link_refuse(l, FAULT_AUTH, "the peer has a secret, this node "
                      "none (repl_secret_file)");
    }
    if (secret != NULL && repl_field_is(&f[1], "none")) {
        return link_refuse(l, FAULT_AUTH, "the peer has no secret "
                      "(repl_secret_file)");
    }
    /* The peer proves in the other direction, its nonce first. */
    hmac_hex(!l->dialled, l->peer_nonce, l->nonce, l->channel, want);
    if (!same_secret_proof(f[1].p, f[1].len, want)) {
        return link_refuse(l, FAULT_AUTH, "a wrong proof of the secret");
    }
    if (!l->dialled) {
        char line[REC_LINE_MAX];

        hmac_hex(false, l->nonce, l->peer_nonce, l->channel, want);
        send_ctl(l, line, repl_fmt_auth(line, want));
    }
    send_hello(l);
    link_hs_set_state(l, HS_WAIT_HELLO);
    return 1;
}

/* Different -I on the two nodes: say so, and redial only slowly. */
static int item_size_mismatch(struct link *l, uint64_t theirs)
{
    static char why[120];

    snprintf(why, sizeof(why), "the peer's item size max (-I) is %llu "
             "bytes, this node's %d: run both with the same -I",
             (unsigned long long)theirs, settings.item_size_max);
    link_slow_redial();
    return link_refuse(l, FAULT_MISMATCH, why);
}

/* Different -m or -M: the nodes may not hold the same data (one evicts or
 * refuses what the other keeps).  Linked anyway, with a warning. */
static void note_limits(struct link *l, uint64_t maxbytes, bool no_evict)
{
    bool ours = !settings.evict_to_free;
    bool differ = maxbytes != (uint64_t)settings.maxbytes ||
                  no_evict != ours;

    repl_note_limits(differ);
    if (differ) {
        log_warn("replication %s: the peer runs with -m %llu MB%s, this "
                 "node with -m %llu MB%s: the pair may not hold the same "
                 "data; run both alike", l->addr,
                 (unsigned long long)(maxbytes >> 20),
                 no_evict ? " -M" : "",
                 (unsigned long long)(settings.maxbytes >> 20),
                 ours ? " -M" : "");
    }
}

/* HELLO <run id> <node id> <wall-clock ms> <item size max> <max bytes>
 * <no evict>, from a peer that proved the secret. */
static int hs_hello(struct link *l, const struct field *f, int nf)
{
    struct repl_hello h;

    if (!repl_parse_hello(f, nf, &h)) {
        return link_refuse(l, FAULT_PROTOCOL, "a malformed HELLO line");
    }
    if (h.run_id == repl_run_id) {
        return link_refuse(l, FAULT_SELF, "this node dialled itself (-x)");
    }
    if (h.item_size_max != (uint64_t)settings.item_size_max) {
        return item_size_mismatch(l, h.item_size_max);
    }
    note_limits(l, h.maxbytes, h.no_evict);
    l->peer_run_id = h.run_id;
    l->peer_node_id = (unsigned)h.node_id;
    apply_note_skew(l, h.wall_ms);
    link_established(l);
    return 1;
}

/* Handle one line before the stream starts (handshake, then RESUME);
 * 1, or -1 with l->fault and l->bad set: the caller closes the link. */
int auth_line(struct link *l, const char *line, size_t len)
{
    struct field f[8];
    int nf = repl_split(line, len, f, 8);

    if (nf <= 0) {
        nf = 0;                 /* too many fields: no step accepts it */
    }
    switch (l->hs) {
    case HS_WAIT_PAIR:
        if (nf >= 2 && repl_field_is(&f[0], "ERROR")) {
            return link_refuse(l, FAULT_MISMATCH, "the peer refused "
                               "this node's protocol version");
        }
        return hs_pair(l, f, nf);
    case HS_WAIT_AUTH:
        return hs_auth(l, f, nf);
    case HS_WAIT_HELLO:
        return hs_hello(l, f, nf);
    case HS_DONE:
    default: {
        struct repl_resume r;

        if (!repl_parse_resume(f, nf, &r) || !walk_resume(l, &r)) {
            return link_refuse(l, FAULT_PROTOCOL, "no RESUME line");
        }
        return 1;
    }
    }
}
