/*
 * item_locks.c - the striped item locks: 2^power mutexes chosen by the
 * low bits of a key's hash, taken around every change of an item and its
 * hash bucket.  Storage's own (items.c, assoc.c): it depends on no
 * worker, connection or protocol module.  Lock order: doc/threads.txt.
 */
#include "item_locks.h"

#include <stdlib.h>

static pthread_mutex_t *item_locks;
static unsigned item_lock_count;
static unsigned item_lock_mask;
static unsigned item_lock_power;

int item_locks_init(unsigned power)
{
    unsigned i;

    if (item_locks != NULL) {
        for (i = 0; i < item_lock_count; i++) {
            pthread_mutex_destroy(&item_locks[i]);
        }
        free(item_locks);
    }
    item_lock_power = power;
    item_lock_count = 1u << power;
    item_lock_mask = item_lock_count - 1;
    item_locks = calloc(item_lock_count, sizeof(*item_locks));
    if (item_locks == NULL) {
        return -1;
    }
    for (i = 0; i < item_lock_count; i++) {
        pthread_mutex_init(&item_locks[i], NULL);
    }
    return 0;
}

void item_lock(uint32_t hv)
{
    pthread_mutex_lock(&item_locks[hv & item_lock_mask]);
}

bool item_trylock(uint32_t hv)
{
    return pthread_mutex_trylock(&item_locks[hv & item_lock_mask]) == 0;
}

void item_unlock(uint32_t hv)
{
    pthread_mutex_unlock(&item_locks[hv & item_lock_mask]);
}

void item_lock_all(void)
{
    unsigned i;

    for (i = 0; i < item_lock_count; i++) {
        pthread_mutex_lock(&item_locks[i]);
    }
}

void item_unlock_all(void)
{
    unsigned i;

    for (i = 0; i < item_lock_count; i++) {
        pthread_mutex_unlock(&item_locks[i]);
    }
}

unsigned item_locks_power(void)
{
    return item_lock_power;
}
