/*
 * memcached.h - core types shared by every module: the item layout, the
 * clock, the protocol limits.  Module APIs live in their own headers; this
 * file holds only what nearly every module needs.
 */
#ifndef MEMCACHED_H
#define MEMCACHED_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#define PAIRCACHED_VERSION "0.1.0"
/* What `version` and `-V` report: memcached's protocol level first, so that
 * clients which parse "major.minor.micro" keep enabling the same features. */
#define SERVER_VERSION "1.6.18-paircached-" PAIRCACHED_VERSION

#define KEY_MAX_LENGTH 250
/* Relative expiry times above this are absolute unix times (30 days). */
#define REALTIME_MAXDELTA (60 * 60 * 24 * 30)
/* Items accessed more recently than this are not bumped in the LRU. */
#define ITEM_UPDATE_INTERVAL 60
#define MAX_NUMBER_LEN 20   /* decimal digits of a 64-bit unsigned */

/*
 * One cached object.  Layout in memory:
 *
 *   +--------------+------------+--------------------+
 *   | struct item  | key[nkey]  | value[nbytes]      |
 *   +--------------+------------+--------------------+
 *
 * The value includes its trailing "\r\n" so that it can be sent with one
 * iovec.  The key is not NUL terminated.  The item lives in a slab chunk of
 * class slabs_clsid.  All fields except refcount are protected by the
 * item's stripe lock (thread.h item_lock) while the item is linked.
 */
struct item {
    struct item *next;          /* LRU: towards the tail (older) */
    struct item *prev;          /* LRU: towards the head (newer) */
    struct item *h_next;        /* hash bucket chain */
    uint64_t version;           /* HLC version; also the CAS value */
    uint32_t exptime;           /* absolute unix deadline, 0 = never */
    uint32_t atime;             /* last access, unix seconds */
    uint32_t flags;             /* client flags, opaque to us */
    uint32_t nbytes;            /* value length including "\r\n" */
    uint32_t refcount;          /* references: one for the hash link, one
                                   per in-flight user; atomic.  32 bits:
                                   a connection holds at most
                                   CONN_MAX_HELD_ITEMS, so no number of
                                   clients can wrap it */
    uint8_t it_flags;           /* ITEM_* bits below */
    uint8_t slabs_clsid;        /* slab class the chunk belongs to */
    uint8_t lru;                /* LRU segment while linked: enum lru_seg
                                   (items.h), HOT/WARM/COLD/TEMP */
    uint8_t nkey;               /* key length */
    char data[];                /* key, then value */
};

#define ITEM_LINKED   0x01      /* in the hash table and an LRU */
#define ITEM_FETCHED  0x02      /* read at least once since stored */
#define ITEM_SLABBED  0x04      /* on a slab free list */
#define ITEM_ACTIVE   0x08      /* read since it last reached its LRU tail:
                                   earns one more trip (second chance) */

#define ITEM_KEY_BINARY 0x10    /* key was given base64 (meta b flag) */
#define ITEM_STALE    0x20      /* invalidated (meta I): served with X */
#define ITEM_TOKEN_SENT 0x40    /* a meta client was told to recache (W) */
#define ITEM_TOMBSTONE 0x80     /* a replicated delete: invisible to
                                   clients, kept so an older copy of the
                                   key cannot come back (replication) */

#define ITEM_HDR_SIZE (offsetof(struct item, data))
#define ITEM_key(it) ((it)->data)
#define ITEM_data(it) ((it)->data + (it)->nkey)
#define ITEM_ntotal(it) (ITEM_HDR_SIZE + (it)->nkey + (it)->nbytes)

/*
 * The clock.  current_time is unix seconds, refreshed by the main thread's
 * once-a-second timer (and at start); process_started is when we started,
 * minus a small margin as memcached does, so that absolute times at or
 * before it mean "already expired".
 */
extern volatile uint32_t current_time;
extern uint32_t process_started;

/* What a connection's socket is (memcached's "transport"). */
enum conn_transport {
    CT_TCP,                     /* TCP (and the listeners of -l/-p) */
    CT_UNIX,                    /* unix domain socket (-s) */
    CT_UDP                      /* UDP socket of -U: one per address,
                                   serving datagrams (conn_udp.c) */
};

#endif
