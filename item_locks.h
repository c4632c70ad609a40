/*
 * item_locks.h - the striped item locks (item_locks.c).
 *
 * Lock order (see doc/threads.txt): item stripe lock -> LRU lock of a class
 * -> slab class lock.  Never take a stripe lock while holding an LRU or
 * slab lock except by trylock.
 */
#ifndef ITEM_LOCKS_H
#define ITEM_LOCKS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Stripe locks keyed by the low bits of a key's hash.  power must not
 * exceed the hash table's initial power (the stripe of a bucket must not
 * change when the table grows). */
int item_locks_init(unsigned power);
void item_lock(uint32_t hv);
bool item_trylock(uint32_t hv);
void item_unlock(uint32_t hv);
/* Every stripe, in index order (table swap during expansion). */
void item_lock_all(void);
void item_unlock_all(void);
unsigned item_locks_power(void);

#endif
