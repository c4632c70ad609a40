/*
 * fuzz_storage.h - the storage every harness starts each input from:
 * fresh slabs, hash table and LRUs with the current settings, as
 * memcached.c's start-up makes them.  Shared by fuzz_conn.c (client
 * protocols) and fuzz_repl.c (replication), which link different objects.
 */
#ifndef FUZZ_STORAGE_H
#define FUZZ_STORAGE_H

#include "assoc.h"
#include "item_chunk.h"
#include "items.h"
#include "settings.h"
#include "slabs.h"

#include <stdbool.h>
#include <stdlib.h>

#define FUZZ_HASHPOWER 12           /* smallest table */

/* Drop the previous input's storage (if any) and make it anew. */
static inline void fuzz_storage_reset(unsigned node_id)
{
    static bool up;

    if (up) {
        assoc_destroy();
        slabs_destroy();
    }
    up = true;
    if (slabs_init(settings.maxbytes, settings.factor,
                   (size_t)settings.chunk_size,
                   (size_t)settings.slab_chunk_size_max,
                   (size_t)settings.item_size_max, false) != 0 ||
        assoc_init(FUZZ_HASHPOWER) != 0 || items_init() != 0) {
        abort();
    }
    item_chunks_init((size_t)settings.item_size_max);
    items_set_node_id(node_id);
}

#endif
