/*
 * repl_net.h - the replication link's sockets: the -x address, the
 * listener, dialling, per-link TCP options, peer address formatting and
 * the send/failure helpers every link I/O path shares.  No records, no
 * link state.  doc/replication.txt, "Topology", "The link's TCP settings".
 */
#ifndef REPL_NET_H
#define REPL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "tls.h"

#define REPL_ADDR_MAX 64            /* "[v6]:port", for logs and stats */

/* send(2) without blocking, through TLS when the link has it.  Inline:
 * the worker's push calls it for every batch. */
static inline ssize_t repl_io_send(int fd, struct tls *tls,
                                   const char *p, size_t n)
{
    enum tls_want want;

    if (tls != NULL) {
        return tls_write(tls, p, n, &want);
    }
    return send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Why a read or send of n bytes failed with errno err, for last_error:
 * an end of file, or EPIPE from a send after it, means the peer closed. */
const char *repl_io_failure(ssize_t n, int err);

/* Split -x "host[:port]" / "[v6]:port" (port 11212 by default). */
int net_parse_peer(const char *spec, char *host, size_t hostlen, char *port,
                   size_t portlen);
/* Refuse (-1, with a message) a peer off loopback when nothing
 * authenticates it. */
int net_check_peer_addr(const char *host, const char *port,
                        bool authenticated);
/* A congestion control named with -o must work now: 0 or -1. */
int net_check_congestion(void);
/* Open the replication listener; its fd, or -1 with a message. */
int net_open_listener(bool authenticated);
/* Start a non-blocking connect to host:port: the fd, its address in
 * addr; or -1, with why in err (or err empty). */
int net_dial(const char *host, const char *port, char *addr, size_t addrlen,
             char *err, size_t errlen);
/* TCP options of a new link; cc gets the congestion control it got. */
void net_tune_socket(int fd, const char *addr, char *cc, size_t cclen);

#endif
