/*
 * conn_udp.h - the UDP port of -U: memcached's datagram framing over the
 * same text and binary protocol handlers as TCP.
 */
#ifndef CONN_UDP_H
#define CONN_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct event_base;

/* memcached's frame: an 8-byte header (request id, sequence number,
 * datagrams in the message, reserved 0), then up to this many bytes of
 * the message per datagram. */
#define UDP_HEADER_SIZE 8
#define UDP_DATA_SIZE 1392
/* The largest datagram read (the largest UDP payload). */
#define UDP_READ_SIZE 65536
/* The largest reply sent for one request datagram; a larger one is
 * dropped and counted (udp_replies_dropped), to bound what a forged
 * source address can make this server send: about 750 datagrams, room
 * for one value of the default -I 1m. */
#define UDP_MAX_REPLY (1024 * 1024 + 1024)

/* What a request header says, from the first UDP_HEADER_SIZE bytes of a
 * datagram of len bytes. */
enum udp_frame {
    UDP_FRAME_OK,               /* one datagram: serve it */
    UDP_FRAME_SHORT,            /* no byte after the header */
    UDP_FRAME_MULTI             /* part of a multi-datagram request,
                                   which memcached does not serve either */
};
enum udp_frame udp_frame_check(const unsigned char *buf, size_t len,
                               uint16_t *request_id);
/* Fill hdr for datagram seq of total of the reply to request_id. */
void udp_frame_header(unsigned char *hdr, uint16_t request_id, uint16_t seq,
                      uint16_t total);
/* Datagrams needed for a reply of len bytes (0 for an empty reply). */
unsigned udp_frame_count(size_t len);

/* A worker adopts the UDP socket of c: buffers sized for a datagram,
 * its own event handler.  -1 when out of memory. */
int conn_udp_adopt(struct conn *c);
/* Release what conn_udp_adopt() allocated (c is being closed). */
void conn_udp_release(struct conn *c);

#endif
