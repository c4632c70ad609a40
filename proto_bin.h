/*
 * proto_bin.h - memcached's binary protocol.
 */
#ifndef PROTO_BIN_H
#define PROTO_BIN_H

#include <stdint.h>

#include "proto.h"

struct conn;

#define BIN_REQ_MAGIC 0x80
#define BIN_RES_MAGIC 0x81
#define BIN_HDR_LEN 24

/* Opcodes. */
enum bin_opcode {
    BIN_GET = 0x00, BIN_SET = 0x01, BIN_ADD = 0x02, BIN_REPLACE = 0x03,
    BIN_DELETE = 0x04, BIN_INCREMENT = 0x05, BIN_DECREMENT = 0x06,
    BIN_QUIT = 0x07, BIN_FLUSH = 0x08, BIN_GETQ = 0x09, BIN_NOOP = 0x0a,
    BIN_VERSION = 0x0b, BIN_GETK = 0x0c, BIN_GETKQ = 0x0d,
    BIN_APPEND = 0x0e, BIN_PREPEND = 0x0f, BIN_STAT = 0x10,
    BIN_SETQ = 0x11, BIN_ADDQ = 0x12, BIN_REPLACEQ = 0x13,
    BIN_DELETEQ = 0x14, BIN_INCREMENTQ = 0x15, BIN_DECREMENTQ = 0x16,
    BIN_QUITQ = 0x17, BIN_FLUSHQ = 0x18, BIN_APPENDQ = 0x19,
    BIN_PREPENDQ = 0x1a, BIN_VERBOSITY = 0x1b, BIN_TOUCH = 0x1c,
    BIN_GAT = 0x1d, BIN_GATQ = 0x1e, BIN_SASL_LIST_MECHS = 0x20,
    BIN_SASL_AUTH = 0x21, BIN_SASL_STEP = 0x22, BIN_GATK = 0x23,
    BIN_GATKQ = 0x24
};

/* Response statuses. */
enum bin_status {
    BIN_OK = 0x0000,
    BIN_KEY_ENOENT = 0x0001,
    BIN_KEY_EEXISTS = 0x0002,
    BIN_E2BIG = 0x0003,
    BIN_EINVAL = 0x0004,
    BIN_NOT_STORED = 0x0005,
    BIN_DELTA_BADVAL = 0x0006,
    BIN_AUTH_ERROR = 0x0020,
    BIN_AUTH_CONTINUE = 0x0021,
    BIN_UNKNOWN_COMMAND = 0x0081,
    BIN_ENOMEM = 0x0082
};

/* The request being handled, kept while its value is read. */
struct bin_req {
    uint8_t opcode;             /* as sent (quiet forms kept) */
    uint8_t extlen;             /* extras length */
    uint16_t keylen;            /* key length */
    uint32_t bodylen;           /* extras + key + value */
    uint32_t opaque;            /* echoed in the reply */
    uint64_t cas;               /* request CAS */
};

/* Handle the first complete binary request buffered on c. */
enum proto_result proto_bin_process(struct conn *c);
/* repl_sync: the peer could not store the write just answered (its
 * reply was rolled back): Out of memory instead, even for a quiet
 * opcode. */
void proto_bin_peer_failed(struct conn *c);
/* The value of a SET/ADD/REPLACE/APPEND/PREPEND has been read. */
void proto_bin_complete_nread(struct conn *c);

#endif
