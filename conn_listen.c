/*
 * conn_listen.c - the listening sockets (main thread): binding each -l,
 * -U, -s and monitor address, the port file, and accept(2), which hands
 * every new connection to a worker.  What a connection does afterwards is
 * conn.c's; UDP sockets go straight to a worker (conn_udp.c).
 */
#include "memcached.h"
#include "conn_listen.h"
#include "conn.h"
#include "log.h"
#include "replication.h"
#include "settings.h"
#include "stats.h"
#include "thread.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void accept_one(struct conn *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int sfd;

    sfd = accept4(l->sfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK);
    if (sfd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
            log_warn("too many open connections: %s", strerror(errno));
            __atomic_add_fetch(&gstats.listen_disabled_num, 1,
                               __ATOMIC_RELAXED);
        }
        return;
    }
    /* Connections handed to a worker but not yet adopted count too:
     * curr_conns alone lags behind a burst of accepts. */
    if (settings.maxconns_fast &&
        __atomic_load_n(&gstats.curr_conns, __ATOMIC_RELAXED) +
                __atomic_load_n(&gstats.conns_pending, __ATOMIC_RELAXED) +
                1 + gstats.reserved_fds >=
            (uint64_t)settings.maxconns - 1) {
        static const char msg[] = "ERROR Too many open connections\r\n";
        if (write(sfd, msg, sizeof(msg) - 1) < 0) {
            /* The client is told by the close alone. */
        }
        close(sfd);
        __atomic_add_fetch(&gstats.rejected_conns, 1, __ATOMIC_RELAXED);
        return;
    }
    if (l->transport == CT_TCP) {
        int one = 1;
        setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    workers_dispatch(sfd, l->transport, l->monitor, l->tls_port, l->addr);
}

static void listen_handler(evutil_socket_t fd, short which, void *arg)
{
    (void)fd;
    (void)which;
    accept_one(arg);
}

#define MAX_LISTENERS 64
static struct conn *listeners[MAX_LISTENERS];  /* main thread only */
static int nlisteners;

void conn_unlisten(void)
{
    while (nlisteners > 0) {
        conn_close(listeners[--nlisteners]);
    }
}

static struct conn *listener_new(int sfd, struct event_base *base,
                                 enum conn_transport t, const char *label)
{
    struct conn *c;

    if (nlisteners == MAX_LISTENERS) {
        return NULL;
    }
    c = conn_new(sfd, CONN_LISTENING, NULL, base);
    if (c == NULL) {
        return NULL;
    }
    listeners[nlisteners++] = c;
    event_del(c->ev);
    event_assign(c->ev, base, sfd, EV_READ | EV_PERSIST, listen_handler, c);
    event_add(c->ev, NULL);
    c->transport = t;
    snprintf(c->addr, sizeof(c->addr), "%s", label);
    return c;
}


/* MEMCACHED_PORT_FILENAME: where the ports bound are reported. */
static FILE *port_file;

void conn_set_port_file(FILE *f)
{
    port_file = f;
}

/* "TCP INET: 11211" for the port file, as memcached writes it; label the
 * socket with the port it got (-p -1: an ephemeral one). */
static void report_port(int sfd, int family, enum conn_transport t,
                        const char *host, char *label, size_t lsize)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    unsigned port = 0;
    bool udp = t == CT_UDP;

    if (getsockname(sfd, (struct sockaddr *)&ss, &len) == 0) {
        port = ntohs(family == AF_INET
                         ? ((struct sockaddr_in *)&ss)->sin_port
                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (family == AF_INET) {
        snprintf(label, lsize, "%s:%s:%u", udp ? "udp" : "tcp", host, port);
    } else {
        snprintf(label, lsize, "%s:[%s]:%u", udp ? "udp6" : "tcp6", host,
                 port);
    }
    if (port_file != NULL) {
        fprintf(port_file, "%s INET%s: %u\n", udp ? "UDP" : "TCP",
                family == AF_INET ? "" : "6", port);
    }
}

/* A socket for address p, bound, and listening if TCP on base: its fd;
 * -1 when the family is not available here (the caller tries the next
 * address), -2 when it cannot bind or listen (logged). */
static int bind_one(const struct addrinfo *p, struct event_base *base,
                    const char *host, int port, enum conn_transport t)
{
    int one = 1;
    int sfd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK,
                     p->ai_protocol);

    if (sfd < 0) {
        return -1;
    }
    setsockopt(sfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (repl_enabled() &&
        setsockopt(sfd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)) == 0) {
        conn_enable_rx_stamps();
    }
    if (p->ai_family == AF_INET6) {
        setsockopt(sfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (bind(sfd, p->ai_addr, p->ai_addrlen) != 0 ||
        (t != CT_UDP && base != NULL &&
         listen(sfd, settings.backlog) != 0)) {
        log_warn("failed to listen on %s port %d: %s",
                 host ? host : "*", port, strerror(errno));
        close(sfd);
        return -2;
    }
    return sfd;
}

/* Serve the bound socket sfd of address p: a listener on base, or a UDP
 * socket handed to a worker.  1 served; 0 not (no listener, sfd
 * closed); -1 refused: a monitor port off loopback (logged, closed). */
static int serve_one(int sfd, const struct addrinfo *p,
                     struct event_base *base, bool monitor,
                     enum conn_transport t, bool tls)
{
    char label[64], hostbuf[INET6_ADDRSTRLEN];

    if (p->ai_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)p->ai_addr)->sin_addr,
                  hostbuf, sizeof(hostbuf));
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)p->ai_addr)->sin6_addr,
                  hostbuf, sizeof(hostbuf));
    }
    report_port(sfd, p->ai_family, t, hostbuf, label, sizeof(label));
    if (monitor && !util_is_loopback(p->ai_addr)) {
        log_warn("monitor_listen %s is not a loopback address; the "
                 "monitor port serves stats without authentication",
                 label);
        close(sfd);
        return -1;
    }
    if (t == CT_UDP) {
        workers_dispatch(sfd, CT_UDP, false, false, label);
    } else {
        struct conn *l = listener_new(sfd, base, CT_TCP, label);
        if (l == NULL) {
            close(sfd);
            return 0;
        }
        l->monitor = monitor;
        l->tls_port = tls;
    }
    return 1;
}

/* Bind one socket of type t for each address host resolves to: TCP ones
 * listen on base, UDP ones go to a worker each. */
static int listen_addrinfo(struct event_base *base, const char *host,
                           int port, bool monitor, enum conn_transport t,
                           bool tls)
{
    struct addrinfo hints, *ai, *p;
    char portbuf[16];
    int count = 0;
    int err;

    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_PASSIVE;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = t == CT_UDP ? SOCK_DGRAM : SOCK_STREAM;
    snprintf(portbuf, sizeof(portbuf), "%d", port < 0 ? 0 : port);
    err = getaddrinfo(host, portbuf, &hints, &ai);
    if (err != 0) {
        log_warn("getaddrinfo(%s): %s", host ? host : "*",
                 gai_strerror(err));
        return -1;
    }
    for (p = ai; p != NULL; p = p->ai_next) {
        int r, sfd = bind_one(p, base, host, port, t);
        if (sfd == -1) {
            continue;
        }
        if (sfd < 0) {
            freeaddrinfo(ai);
            return -1;
        }
        if (base == NULL && t == CT_TCP) {
            close(sfd);         /* a probe (conn_listen_tcp) */
            count++;
            continue;
        }
        r = serve_one(sfd, p, base, monitor, t, tls);
        if (r < 0) {
            freeaddrinfo(ai);
            return -1;
        }
        count += r;
    }
    freeaddrinfo(ai);
    return count > 0 ? 0 : -1;
}

/* Every address of a -l list ("host", "host:port", "[v6]:port"). */
static int listen_list(struct event_base *base, const char *interfaces,
                       int port, bool monitor, enum conn_transport t)
{
    char *list, *save = NULL, *tok;
    int rc = 0;

    if (interfaces == NULL) {
        return listen_addrinfo(base, NULL, port, monitor, t,
                               t == CT_TCP && settings.ssl.enabled &&
                               !monitor);
    }
    list = strdup(interfaces);
    if (list == NULL) {
        return -1;
    }
    for (tok = strtok_r(list, ";, ", &save); tok != NULL && rc == 0;
         tok = strtok_r(NULL, ";, ", &save)) {
        bool tls = t == CT_TCP && settings.ssl.enabled && !monitor;
        char host[256], pstr[16] = "";

        /* memcached's "notls:" prefix: a plain listener beside -Z ones */
        if (strncmp(tok, "notls:", 6) == 0) {
            if (!settings.ssl.enabled) {
                fprintf(stderr, "'notls' option is valid only when SSL is "
                                "enabled\n");
                rc = -1;
                break;
            }
            tls = false;
            tok += 6;
        }
        /* host:port, or [v6]:port; a bare v6 address has several ':'. */
        if (util_split_host_port(tok, strlen(tok), host, sizeof(host), pstr,
                                 sizeof(pstr)) != 0) {
            log_warn("bad listen address: %s", tok);
            rc = -1;
            break;
        }
        rc = listen_addrinfo(base, host, pstr[0] ? atoi(pstr) : port,
                             monitor, t, tls);
    }
    free(list);
    return rc;
}

int conn_listen_tcp(struct event_base *base, const char *interfaces,
                    int port, bool monitor)
{
    return listen_list(base, interfaces, port, monitor, CT_TCP);
}

int conn_listen_udp(const char *interfaces, int port)
{
    return listen_list(NULL, interfaces, port, false, CT_UDP);
}

int conn_listen_unix(struct event_base *base, const char *path, int access)
{
    struct sockaddr_un addr;
    char label[sizeof(((struct conn *)0)->addr)];
    int sfd;
    mode_t old;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        log_warn("unix socket path too long: %s", path);
        return -1;
    }
    sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (sfd < 0) {
        return -1;
    }
    unlink(path);
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, path);
    old = umask((mode_t)(~access & 0777));
    if (bind(sfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(sfd, settings.backlog) != 0) {
        umask(old);
        log_warn("failed to listen on %s: %s", path, strerror(errno));
        close(sfd);
        return -1;
    }
    umask(old);
    snprintf(label, sizeof(label), "unix:%s", path);
    if (listener_new(sfd, base, CT_UNIX, label) == NULL) {
        close(sfd);
        return -1;
    }
    return 0;
}
