/*
 * item_chunk.h - chunked items: a value larger than the largest slab
 * class (slab_chunk_max) is kept as a small header item plus a chain of
 * chunks, as memcached does.  Pure layout and byte copying; allocation
 * and eviction stay in items.c, the page mover in slab_mover.c.
 */
#ifndef ITEM_CHUNK_H
#define ITEM_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "memcached.h"

/*
 * A chunk of a chunked item's value.  Its it_flags, slabs_clsid and nkey
 * sit where struct item has them, so that slabs.c (free lists) and the
 * page mover can read any chunk of a page as a struct item: a chunk in
 * use has it_flags 0 and nkey 0, which no item has (keys are never
 * empty).
 *
 *   header item: | struct item | key | first chunk pointer |
 *   chunks:      | struct item_chunk | value bytes ... | -> next
 */
struct item_chunk {
    struct item_chunk *next;    /* next piece of the value; NULL: last */
    struct item_chunk *prev;    /* previous piece; NULL: first */
    struct item *head;          /* the header item owning the chain */
    uint32_t size;              /* value bytes held in data[] */
    uint32_t spare[6];          /* unused: keeps the fields below where
                                   struct item has them */
    uint8_t it_flags;           /* 0 in use; ITEM_SLABBED when free */
    uint8_t slabs_clsid;        /* slab class of this chunk */
    uint8_t unused;             /* struct item's lru */
    uint8_t nkey;               /* always 0: marks a chunk */
    char data[];                /* the value bytes */
};

#define ITEM_CHUNK_HDR (offsetof(struct item_chunk, data))

/* Items whose ITEM_ntotal() exceeds this are chunked (SIZE_MAX: none);
 * set once at start by item_chunks_init(). */
extern size_t item_chunk_limit;
/* The class of full chunks (the largest); chunked headers are on its
 * LRU, as memcached's are. */
extern unsigned item_chunk_clsid;

/* After slabs_init(): chunk items above the largest class, up to
 * item_max bytes in all. */
void item_chunks_init(size_t item_max);
/* Largest ITEM_ntotal() an item may have (the item size limit). */
size_t item_chunks_item_max(void);

/* A chunked header is on the largest class's LRU (slabs_clsid): testing
 * that first costs a flat item of another class fewer instructions on
 * every set and get than the size test alone. */
static inline bool item_is_chunked(const struct item *it)
{
    return it->slabs_clsid == item_chunk_clsid &&
           ITEM_ntotal(it) > item_chunk_limit;
}

/* Bytes of a chunked item's header: struct item, key, chain pointer. */
static inline size_t item_chunk_hdr_size(size_t nkey)
{
    return ITEM_HDR_SIZE + nkey + sizeof(struct item_chunk *);
}

static inline struct item_chunk *item_first_chunk(const struct item *it)
{
    struct item_chunk *ch;

    memcpy(&ch, ITEM_data(it), sizeof(ch));
    return ch;
}

static inline void item_set_first_chunk(struct item *it,
                                        struct item_chunk *ch)
{
    memcpy(ITEM_data(it), &ch, sizeof(ch));
}

/* How many value bytes the next chunk of a value with `remain` bytes
 * still to place should hold, given the full chunk's size: a full
 * chunk's worth, or the remainder (which then takes a smaller class). */
size_t item_chunk_take(size_t remain, size_t full_chunk);

/* Copy len bytes into / out of the value at offset off (any item). */
void item_value_write(struct item *it, size_t off, const void *src,
                      size_t len);
void item_value_read(const struct item *it, size_t off, void *dst,
                     size_t len);
/* Copy len value bytes from src at soff to dst at doff. */
void item_value_copy(struct item *dst, size_t doff, const struct item *src,
                     size_t soff, size_t len);
/* The value's last two bytes are "\r\n". */
bool item_value_ends_crlf(const struct item *it);
static inline bool item_crlf_ok(const struct item *it)
{
    if (item_is_chunked(it)) {
        return item_value_ends_crlf(it);
    }
    return memcmp(ITEM_data(it) + it->nbytes - 2, "\r\n", 2) == 0;
}

/* Call fn for each contiguous piece of the first len value bytes; stops
 * and returns false as soon as fn does. */
typedef bool (*item_piece_fn)(void *arg, const char *p, size_t n);
bool item_value_pieces(const struct item *it, size_t len, item_piece_fn fn,
                       void *arg);

/* Append one iovec per piece of the first len value bytes to *iov (used
 * of size slots, doubled with realloc as needed): a chunked value in a
 * reply.  Returns 0, or -1 when realloc fails. */
struct iovec;
int item_value_iovs(const struct item *it, size_t len, struct iovec **iov,
                    int *used, int *size);

/* A cursor filling a value piece by piece (reading it from a client). */
struct value_cursor {
    struct item_chunk *ch;      /* chunk being filled; NULL: flat item */
    size_t room;                /* bytes left in it */
};
/* Start at a chunked value's first byte; *dst is where it goes.  A flat
 * item's cursor is just ch NULL and *dst ITEM_data (room is not used). */
void item_cursor_start_chunked(struct value_cursor *vc, struct item *it,
                               char **dst);
/* Bytes that can go at *dst contiguously, moving *dst to the next chunk
 * when this one is full.  want is what the caller has left to place. */
size_t item_cursor_room_chunked(struct value_cursor *vc, char **dst,
                                size_t want);
static inline size_t item_cursor_room(struct value_cursor *vc, char **dst,
                                      size_t want)
{
    if (vc->ch == NULL) {
        return want;
    }
    return item_cursor_room_chunked(vc, dst, want);
}
/* n bytes were placed at *dst. */
static inline void item_cursor_advance(struct value_cursor *vc, char **dst,
                                       size_t n)
{
    *dst += n;
    if (vc->ch != NULL) {
        vc->room -= n;
    }
}

#endif
