/*
 * slabs.h - size classes, pages and free lists under a memory limit.
 */
#ifndef SLABS_H
#define SLABS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SLABS_MAX_CLASSES 64        /* class ids 1..63; 0 = none */

/* Whether blocks allocated from now on are advised for transparent huge
 * pages (-o slab_hugepages; default on). */
void slabs_set_hugepages(bool on);

/* Use these chunk sizes (rising) instead of the -f series from the next
 * slabs_init() on (-o slab_sizes); the classes for chunk_max and item_max
 * still follow.  n == 0 goes back to the series.  Returns 0, or -1 when
 * there are too many. */
int slabs_set_sizes(const size_t *sizes, unsigned n);

/*
 * Build the classes: chunk sizes grow from hdr+chunk_min by `factor` up to
 * chunk_max, the largest class (bigger items are chained from chunks,
 * item_chunk.h); a page holds at least item_max bytes.  limit is the
 * byte budget for pages (0 = unlimited).  Returns 0, or -1 on bad input.
 */
int slabs_init(size_t limit, double factor, size_t chunk_min,
               size_t chunk_max, size_t item_max, bool prealloc);
/* How pages are counted against the limit from the next slabs_init():
 * whole (memcached with slab_reassign, the default) or perslab * size,
 * and bytes counted as allocated before any page (memcached's test hook
 * T_MEMD_INITIAL_MALLOC). */
void slabs_set_accounting(bool whole_pages, size_t initial);
/* Pages in the global pool (stats slab_global_page_pool). */
unsigned slabs_pool_pages(void);
/* Free every page (tests and clean shutdown). */
void slabs_destroy(void);

/* Class id for an item of `size` total bytes, 0 if too large. */
unsigned slabs_clsid(size_t size);
/* A chunk from class id, or NULL when the class is full and no page can
 * be added under the limit.  `size` is what the caller will use. */
void *slabs_alloc(size_t size, unsigned id);
void slabs_free(void *ptr, size_t size, unsigned id);
/* Like slabs_alloc, but only a chunk already on the free list: never a
 * new page (the page mover's rescues). */
void *slabs_alloc_free(size_t size, unsigned id);
/* A used chunk of class id now holds `to` bytes instead of `from`. */
void slabs_resize(unsigned id, size_t from, size_t to);

size_t slabs_chunk_size(unsigned id);
/* Chunks per page of class id. */
unsigned slabs_perslab(unsigned id);
unsigned slabs_largest_class(void);
unsigned slabs_count(void);
/* Pages currently owned by class id. */
unsigned slabs_pages(unsigned id);
size_t slabs_mem_malloced(void);
size_t slabs_mem_limit(void);
/* Change the limit at run time (cache_memlimit).  While total_malloced is
 * over it, pages in the global pool go back to the system, now and as
 * slab_automove or slabs reassign adds them. */
void slabs_set_mem_limit(size_t limit);

/* "stats slabs": page and chunk figures per class in use, then totals.
 * extra, if given, appends the per-class hit counters (stats.c). */
typedef void (*slabs_stats_fn)(struct strbuf *sb, unsigned id);
void slabs_stats(struct strbuf *sb, slabs_stats_fn extra);
void slabs_class_stats(unsigned id, uint64_t *used, uint64_t *free,
                       uint64_t *requested);

enum reassign_result {
    REASSIGN_OK,
    REASSIGN_BADCLASS,
    REASSIGN_NOSPARE,
    REASSIGN_SAME
};
/* Start moving a page away from src (-1: the class with most pages) to
 * dst (0: the global pool): returns the page, its chunk size and count
 * for items.c to empty. */
enum reassign_result slabs_reassign_begin(int src, unsigned dst,
                                          unsigned *src_out, char **page,
                                          size_t *chunk, unsigned *count);
/* Every chunk of the moving page is free: hand the memory to dst (or
 * the pool).  false: a store took one of them back; empty it again. */
bool slabs_reassign_finish(unsigned src, unsigned dst);
/* Give up a move: the page stays with src, its free chunks go back. */
void slabs_reassign_cancel(unsigned src);

#endif
