/*
 * assoc.h - the key -> item hash table.  Every call except init, the
 * expander control and assoc_walk expects the caller to hold the item lock
 * for the key's hash (thread.h item_lock(hv)).
 */
#ifndef ASSOC_H
#define ASSOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct item;

/* hashpower: log2 of the initial bucket count (0 = default 16). */
int assoc_init(int hashpower);
void assoc_destroy(void);

struct item *assoc_find(const char *key, size_t nkey, uint32_t hv);
/* The first item of hv's bucket, for prefetching only.  The caller holds
 * some stripe lock (any: that keeps both tables allocated), not
 * necessarily hv's, so what it returns may be stale or on its way to the
 * slab free list: its memory stays mapped, but nothing in it may be
 * trusted. */
struct item *assoc_peek(uint32_t hv);
/* Insert an item whose key is not in the table. */
void assoc_insert(struct item *it, uint32_t hv);
/* Remove the item with this key, if any. */
void assoc_delete(const char *key, size_t nkey, uint32_t hv);
/* it (not in the table) takes the place of was (in it, same key): one
 * walk of the bucket, by address, and the item count stays. */
void assoc_replace(struct item *was, struct item *it, uint32_t hv);

/* Background thread that grows the table one bucket at a time once it
 * holds 1.5 items per bucket. */
int assoc_start_expander(void);
void assoc_stop_expander(void);
/* Run one whole expansion now, on the calling thread (tests). */
void assoc_expand_now(void);
/* About this many items are on their way (a full copy from the peer):
 * have the expander grow the table for them now, while it is cheap,
 * instead of once per doubling while they arrive. */
void assoc_reserve(uint64_t items);

unsigned assoc_hashpower(void);
bool assoc_is_expanding(void);
uint64_t assoc_count(void);

/*
 * Visit every item, one bucket at a time.  For each bucket, fn is called
 * with that bucket's item lock held, once per item; fn may unlink the item
 * it is given (it computes the key's hash itself: most walks never need
 * it, and hashing every key costs a full copy about 4% of its CPU).
 * Expansion waits while a walk runs.  fn returns false to stop the walk
 * early.
 */
typedef bool (*assoc_walk_fn)(struct item *it, void *arg);
void assoc_walk(assoc_walk_fn fn, void *arg);

/* Visit buckets [start, start + n) of the current table (the range is
 * clipped).  If the table grows between calls, bucket i splits into i and
 * i + old size, so an item not yet visited is still ahead of the next
 * start: nothing is missed, and an item already visited may be seen once
 * more.
 * Returns the next start, or 0 when the end was reached. */
uint64_t assoc_walk_buckets(uint64_t start, uint64_t n, assoc_walk_fn fn,
                            void *arg);

#endif
