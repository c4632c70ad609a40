/*
 * items_apply.h - applying the peer's stream to local storage, last
 * writer wins by version (items_apply.c); the replication thread's entry
 * points into storage.  The flush cutoff is items.h's item_apply_flush.
 */
#ifndef ITEMS_APPLY_H
#define ITEMS_APPLY_H

#include <stddef.h>
#include <stdint.h>

/* --- applying the peer's stream (replication.c) ---------------------------
 * Last writer wins: a record replaces local state only if its version is
 * higher.  These never call the mutation hook (nothing echoes back).
 */
enum apply_result {
    APPLY_DONE,                 /* changed local state */
    APPLY_STALE,                /* local version is as new or newer */
    APPLY_NO_MEMORY             /* could not allocate the item: any older
                                   local value was removed */
};
/* hv is hash(key, nkey).  marks: ITEM_KEY_BINARY, ITEM_STALE and
 * ITEM_TOKEN_SENT as the peer's item has them.  next_hv, when not NULL,
 * is the hash of the key the caller will apply next: its bucket is
 * prefetched while this one is locked.  copy: the record is part of a
 * full copy; a new item then goes straight to COLD instead of HOT (it has
 * not been used here, and the LRU maintainer would only move it there,
 * item by item, while the copy arrives). */
enum apply_result item_apply_store(const char *key, size_t nkey,
                                   uint32_t hv,
                                   uint32_t flags, uint32_t exptime,
                                   uint64_t version, const char *data,
                                   size_t len, uint8_t marks,
                                   const uint32_t *next_hv, bool copy);
/* The peer's item of exactly this version got meta marks (ITEM_STALE,
 * ITEM_TOKEN_SENT): ours gets them too. */
enum apply_result item_apply_marks(const char *key, size_t nkey,
                                   uint64_t version, uint8_t marks);
enum apply_result item_apply_delete(const char *key, size_t nkey,
                                    uint64_t version);
enum apply_result item_apply_touch(const char *key, size_t nkey,
                                   uint32_t exptime, uint64_t version);

#endif
