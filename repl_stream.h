/*
 * repl_stream.h - this node's outbound record stream and its backlog
 * ring: what the mutation hook (workers) appends, under out_lock, and
 * how it reaches the active link's socket.  It knows one socket (and its
 * TLS session), never a link.  doc/replication.txt, "Threads", "Backlog".
 */
#ifndef REPL_STREAM_H
#define REPL_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "items.h"
#include "util.h"

struct tls;

#define SEND_SLICE (256 * 1024)     /* most bytes per send(2) of the stream */
#define CATCHUP_CHUNK (256 * 1024)  /* backlog bytes copied per lock */
#define SYNC_HIGH_WATER (4 * 1024 * 1024)   /* pause the walk above this */
#define LAG_SAMPLES 256             /* send times kept for lag in ms */

/* Set by the replication thread while it applies the peer's records, so
 * that the hook does not send them back. */
extern __thread bool repl_applying;

/* Allocate a backlog of backlog bytes (0: none); wake_fd is written when
 * the replication thread must send or close.  0, or -1 out of memory. */
int stream_init(size_t backlog, int wake_fd);
/* From now on the hook feeds the stream (repl_start, once running). */
void stream_hook_on(void);
/* The mutation hook (items.c), called with the key's stripe lock held. */
void repl_feed(enum mutation_op op, const struct item *it, uint64_t version,
               uint32_t exptime);

/* The active link starts a full copy on fd: the bytes its handshake had
 * not sent (pending, n), then "SYNC <items> <offset> <records>"; live
 * records follow, sent by the replication thread only.  Returns the
 * records count at SYNC. */
uint64_t stream_open_copy(int fd, struct tls *tls, const char *pending,
                          size_t n, uint64_t items);
/* ... or a partial resync from backlog offset `from`, where the peer has
 * applied `records` of ours (PSYNC is already in the link's own buffer).
 * Returns the backlog's end. */
uint64_t stream_open_catchup(int fd, struct tls *tls, uint64_t from,
                             uint64_t records);
/* Whether offset off is still in the backlog. */
bool stream_backlog_has(uint64_t off);

/* One step of a partial resync: copy the next CATCHUP_CHUNK bytes of the
 * backlog into tx. */
enum catchup_step {
    CATCHUP_NONE,               /* no catch-up running */
    CATCHUP_MORE,               /* a chunk was copied into tx */
    CATCHUP_DONE,               /* reached the live end just now */
    CATCHUP_LOST                /* overwritten before it was sent */
};
enum catchup_step stream_catchup_step(struct rbuf *tx);

/* What stream_flush() found. */
struct stream_flush_result {
    bool blocked;               /* the socket is full: wait for EV_WRITE */
    int err;                    /* a send failed with this errno */
    bool overflow;              /* over repl_buffer_size: drop the link */
};
/* The replication thread sends what is queued, SEND_SLICE at a time with
 * the lock dropped between slices.  writable: called for EV_WRITE. */
void stream_flush(bool writable, struct stream_flush_result *r);
/* Queue a control line (ACK, PING, SYNCED) behind the records fed so far. */
void stream_queue_ctrl(const char *line, size_t n);
/* A slice of the full copy, built in slice: queue it and send it while
 * it is in the cache.  slice comes back empty. */
void stream_queue_copy(struct rbuf *slice);
/* The walk is done: workers may send again. */
void stream_copy_done(void);
/* Bytes queued and not sent (the walk pauses above SYNC_HIGH_WATER). */
size_t stream_pending(void);
/* The active link closes: workers stop sending before close(2). */
void stream_close(void);
/* No link: forget whatever a wake-up found queued. */
void stream_discard(void);
/* Whether a link receives the stream (replication thread). */
bool stream_enabled(void);

/* The peer acknowledged our stream up to offset, records in all: true
 * when acked_off moved (synchronous writes may be answered). */
bool stream_ack(uint64_t offset, uint64_t records);
/* The peer could not store our record ending at offset off (NAK). */
void stream_nak(uint64_t off);
/* Age of the oldest batch the peer has not acknowledged, in ms. */
uint64_t stream_lag_ms(uint64_t now_us);

/* For `stats replication`. */
struct stream_stats {
    uint64_t items_queued;      /* records queued for a link since start */
    uint64_t sent;              /* stream bytes sent, all links */
    uint64_t unsent;            /* queued, not sent */
    uint64_t records;           /* records fed since start */
    uint64_t backlog_first;     /* oldest offset in the backlog */
    uint64_t backlog_end;       /* offset after the newest record */
    size_t backlog_size;        /* the ring's size */
};
void stream_stats(struct stream_stats *s);

/* A warm restart (repl_persist.c): the backlog and counters as saved in
 * the memory file, and put back before the hook is on. */
struct stream_saved {
    uint64_t first;             /* oldest backlog offset kept */
    uint64_t end;               /* offset after the newest record */
    uint64_t records;           /* records fed, counted like end */
    uint64_t acked;             /* what the peer had acknowledged */
};
/* Append the backlog [first, end) to out; false when out of memory. */
bool stream_save(struct rbuf *out, struct stream_saved *sv);
/* data holds sv->end - sv->first bytes. */
void stream_restore(const struct stream_saved *sv, const char *data);

#endif
