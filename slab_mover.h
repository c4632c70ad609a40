/*
 * slab_mover.h - slabs reassign: moving a slab page from one class to
 * another in the background (slab_mover.c), and its counters.
 */
#ifndef SLAB_MOVER_H
#define SLAB_MOVER_H

#include "slabs.h"

#include <stdbool.h>
#include <stdint.h>

/* slabs reassign: start moving a page from src (-1 = any) to dst in the
 * background.  *busy when a move is already running. */
enum reassign_result items_reassign(int src, unsigned dst, bool *busy);
bool items_reassign_running(void);
uint64_t items_slabs_moved(void);
/* Items the page mover copied elsewhere in their class, and live items it
 * had to evict for want of a free chunk. */
void items_reassign_stats(uint64_t *rescues, uint64_t *chunk_rescues,
                          uint64_t *evictions_nomem);

#endif
