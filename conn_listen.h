/*
 * conn_listen.h - the listening sockets: TCP, UDP and unix ones, and the
 * port file (conn_listen.c).
 */
#ifndef CONN_LISTEN_H
#define CONN_LISTEN_H

#include <stdbool.h>
#include <stdio.h>

struct event_base;

/* Listen on every address in `interfaces` (comma separated, NULL = all;
 * "host:port" overrides port) or on a unix socket; 0 or -1.  With base
 * NULL, conn_listen_tcp only checks that each address can be bound now
 * (bind, then close): a port taken fails. */
int conn_listen_tcp(struct event_base *base, const char *interfaces,
                    int port, bool monitor);
int conn_listen_unix(struct event_base *base, const char *path, int access);
/* Close every listener (main thread); conn_listen_* open them again. */
void conn_unlisten(void);
/* Bind a UDP socket on every address of `interfaces` (as for TCP) and
 * hand each to a worker (conn_udp.c serves it).  0 or -1. */
int conn_listen_udp(const char *interfaces, int port);
/* Report each port bound from now on to f, as memcached does for
 * $MEMCACHED_PORT_FILENAME ("TCP INET: 11211"); NULL: stop. */
void conn_set_port_file(FILE *f);

#endif
