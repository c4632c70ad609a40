/*
 * repl_net.c - sockets of the replication link: parsing and checking the
 * -x address, the listener, dialling, TCP options of each link and peer
 * address formatting.  No records and no link state (replication.c).
 */
#include "memcached.h"
#include "repl_net.h"
#include "log.h"
#include "settings.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *repl_io_failure(ssize_t n, int err)
{
    return n == 0 || err == EPIPE ? "peer closed" : strerror(err);
}

/* A port given in -x: decimal 1-65535 and nothing else.  getaddrinfo
 * would take "99999" and dial 99999 mod 65536 = 34463. */
static int check_port(const char *p)
{
    char *end;
    long v;

    if (*p < '0' || *p > '9') {
        return -1;
    }
    errno = 0;
    v = strtol(p, &end, 10);
    return *end == '\0' && errno == 0 && v >= 1 && v <= 65535 ? 0 : -1;
}

/* Split -x "host[:port]" / "[v6]:port" into peer_host and peer_port;
 * -1 for an empty host or a port that is not 1-65535. */
int net_parse_peer(const char *spec, char *peer_host, size_t hostlen,
                   char *peer_port, size_t portlen)
{
    snprintf(peer_port, portlen, "11212");
    if (util_split_host_port(spec, strlen(spec), peer_host, hostlen,
                             peer_port, portlen) != 0) {
        return -1;
    }
    return peer_host[0] ? check_port(peer_port) : -1;
}

/* -x off loopback needs what a listener off loopback needs (see
 * open_listener): a secret, or TLS that verifies the peer; else this node
 * would dial out and apply whatever answers there.  A name is resolved
 * now: one that does not resolve, or that has any address off loopback,
 * counts as off loopback. */
int net_check_peer_addr(const char *peer_host, const char *peer_port,
                        bool authenticated)
{
    struct addrinfo hints, *ai = NULL, *p;
    bool loopback;
    int rc;

    if (authenticated) {
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(peer_host, peer_port, &hints, &ai);
    loopback = rc == 0;
    for (p = ai; p != NULL; p = p->ai_next) {
        if (!util_is_loopback(p->ai_addr)) {
            loopback = false;
        }
    }
    if (ai != NULL) {
        freeaddrinfo(ai);
    }
    if (loopback) {
        return 0;
    }
    fprintf(stderr, "the peer %s%s%s:%s (-x) is not on loopback%s: give "
            "-o repl_secret_file=PATH (the same secret on both nodes) or "
            "repl_tls=1 with repl_tls_ca=PATH, or a peer on 127.0.0.1\n",
            strchr(peer_host, ':') ? "[" : "", peer_host,
            strchr(peer_host, ':') ? "]" : "", peer_port,
            rc != 0 ? " (or does not resolve)" : "");
    return -1;
}

/* The congestion control the link asks for: repl_tcp_congestion, or
 * cubic when it is not given; NULL to keep the system's. */
static const char *wanted_congestion(void)
{
    const char *cc = settings.repl_tcp_congestion;

    if (cc == NULL) {
        return "cubic";
    }
    return strcmp(cc, "system") == 0 ? NULL : cc;
}

static bool set_congestion(int fd, const char *cc)
{
    return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc,
                      (socklen_t)strlen(cc)) == 0;
}

/* Socket options of a new link; congestion shows what it got.
 *
 * The link is one long-lived bulk flow between two nearby servers.  A
 * system default of BBR without the fq qdisc makes TCP pace every burst
 * itself with a timer; measured here, that costs the pair 6% more CPU
 * per replicated 4 KB set than cubic, for no gain on a LAN.  So the
 * link asks for cubic unless told otherwise; if the kernel refuses (not
 * built in, or not in tcp_allowed_congestion_control), the link keeps
 * the system's, which an explicit -o repl_tcp_congestion never gets to:
 * net_check_congestion() tries it at start. */
void net_tune_socket(int fd, const char *addr, char *congestion,
                     size_t cclen)
{
    const char *cc = wanted_congestion();
    socklen_t len = (socklen_t)cclen - 1;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    if (cc != NULL && !set_congestion(fd, cc)) {
        log_info("replication %s: congestion control %s refused (%s); "
                 "keeping the system's", addr, cc, strerror(errno));
    }
    memset(congestion, 0, cclen);
    if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, congestion,
                   &len) != 0) {
        congestion[0] = '\0';
    }
}

/* Whether the links will lose CAP_NET_ADMIN: started as root with -u
 * naming another user, or never root.  Without it the kernel lets a
 * socket have only what tcp_allowed_congestion_control lists, and the
 * links are dialled after the privileges are dropped. */
static bool links_unprivileged(void)
{
    struct passwd *pw;

    if (geteuid() != 0) {
        return true;
    }
    pw = settings.username != NULL ? getpwnam(settings.username) : NULL;
    return pw != NULL && pw->pw_uid != 0;
}

/* Whether cc is in /proc/sys/net/ipv4/tcp_allowed_congestion_control;
 * true when that cannot be read (the kernel will say at the first link). */
static bool congestion_allowed(const char *cc, char *list, size_t n)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_allowed_congestion_control",
                    "r");
    char *tok, *save = NULL, copy[256];

    list[0] = '\0';
    if (f == NULL) {
        return true;
    }
    if (fgets(list, (int)n, f) == NULL) {
        fclose(f);
        return true;
    }
    fclose(f);
    list[strcspn(list, "\n")] = '\0';
    snprintf(copy, sizeof(copy), "%s", list);
    for (tok = strtok_r(copy, " \t", &save); tok != NULL;
         tok = strtok_r(NULL, " \t", &save)) {
        if (strcmp(tok, cc) == 0) {
            return true;
        }
    }
    return false;
}

int net_check_congestion(void)
{
    const char *cc = wanted_congestion();
    char list[256];

    if (cc != NULL && links_unprivileged() &&
        !congestion_allowed(cc, list, sizeof(list))) {
        /* Tried now as root it would work, and then be refused on every
         * link once -u has dropped root. */
        if (settings.repl_tcp_congestion != NULL) {
            fprintf(stderr, "repl_tcp_congestion: \"%s\" is not in "
                    "/proc/sys/net/ipv4/tcp_allowed_congestion_control "
                    "(%s), so the links, dialled without root, cannot "
                    "use it; add it there, or give \"system\"\n", cc,
                    list);
            return -1;
        }
        log_warn("replication: %s is not in net.ipv4.tcp_allowed_"
                 "congestion_control (%s): the links run the system's "
                 "congestion control; add %s there, or give -o "
                 "repl_tcp_congestion=system to silence this", cc, list,
                 cc);
        return 0;
    }
    if (settings.repl_tcp_congestion != NULL && cc != NULL) {
        /* Asked for by name: a typo or a missing module is an error now,
         * not a quiet fallback on every link. */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        bool ok;
        int err;

        if (fd < 0) {
            fd = socket(AF_INET6, SOCK_STREAM, 0);    /* IPv6-only host */
        }
        ok = fd >= 0 && set_congestion(fd, settings.repl_tcp_congestion);
        err = errno;
        if (fd >= 0) {
            close(fd);
        }
        if (!ok) {
            fprintf(stderr, "repl_tcp_congestion: cannot use \"%s\" (%s); "
                    "see /proc/sys/net/ipv4/tcp_allowed_congestion_control, "
                    "or give \"system\"\n", settings.repl_tcp_congestion,
                    strerror(err));
            return -1;
        }
    }
    return 0;
}



/* The listen address: repl_listen, else the first -l address, else all. */
int net_open_listener(bool authenticated)
{
    struct addrinfo hints, *ai = NULL;
    char host[256] = "", port[16];
    const char *spec = settings.repl_listen ? settings.repl_listen
                                            : settings.inter;
    int one = 1, fd, rc;

    if (spec != NULL && strncmp(spec, "notls:", 6) == 0) {
        spec += 6;              /* -Z's plain-listener prefix */
    }
    if (spec != NULL) {
        char lport[256];        /* a -l host:port's port: not ours */
        size_t n = strcspn(spec, ",; ");
        if (n >= sizeof(host) ||
            util_split_host_port(spec, n, host, sizeof(host), lport,
                                 sizeof(lport)) != 0) {
            return -1;
        }
    }
    snprintf(port, sizeof(port), "%d", settings.repl_port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "replication listener %s: %s\n", host,
                gai_strerror(rc));
        return -1;
    }
    if (!util_is_loopback(ai->ai_addr) && !authenticated) {
        fprintf(stderr, "the replication listener on %s is not on loopback: "
                "give -o repl_secret_file=PATH (the same secret on both "
                "nodes) or repl_tls=1 with repl_tls_ca=PATH, or "
                "-o repl_listen=127.0.0.1\n",
                host[0] ? host : "all addresses");
        freeaddrinfo(ai);
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK,
                ai->ai_protocol);
    if (fd < 0) {
        freeaddrinfo(ai);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        fprintf(stderr, "replication listener on port %d: %s\n",
                settings.repl_port, strerror(errno));
        close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

int net_dial(const char *host, const char *port, char *addr, size_t addrlen,
             char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL, *p;
    int fd = -1;

    err[0] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        snprintf(err, errlen, "cannot resolve %.100s", host);
        return -1;
    }
    for (p = ai; p != NULL; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK,
                    p->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, p->ai_addr, p->ai_addrlen) == 0 ||
            errno == EINPROGRESS) {
            break;
        }
        /* Refused or unreachable at once (no route, interface down). */
        snprintf(err, errlen, "%.60s:%.8s: %.50s", host, port,
                 strerror(errno));
        close(fd);
        fd = -1;
    }
    if (fd >= 0) {
        (void)util_addr_name(p->ai_addr, addr, addrlen);
    }
    freeaddrinfo(ai);
    return fd;
}
