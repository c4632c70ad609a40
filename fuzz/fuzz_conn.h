/*
 * fuzz_conn.h - the in-memory connection every protocol harness drives:
 * real storage, a real conn on one end of a socketpair, a worker event
 * base run by hand.  Harness files only pick the server's options.
 */
#ifndef FUZZ_CONN_H
#define FUZZ_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "settings.h"

/* The options of the server that serves one input. */
struct fuzz_mode {
    enum proto_mode proto;      /* -B */
    bool sasl;                  /* -S: binary SASL required */
    bool text_auth;             /* -Y: text authentication required */
};

/* Set up storage, stats, the worker and the password file (user "fuzz",
 * password "secret"); once per process. */
void fuzz_conn_init(void);

/* Serve data as one client connection would send it, in three writes,
 * then close; storage, stats and settings start afresh each time. */
void fuzz_conn_run(const struct fuzz_mode *m, const uint8_t *data,
                   size_t size);

/* Serve data as datagrams to a UDP port (-U): each a 2-byte big-endian
 * length and its bytes, memcached's frame header included. */
void fuzz_conn_run_udp(const uint8_t *data, size_t size);

#endif
