/*
 * slabs.c - the memory allocator for items: a table of size classes, each
 * owning whole pages cut into equal chunks, with a free list per class and
 * one byte limit over all pages.  It knows nothing of keys, LRUs or locks
 * other than its own; items_lru.c decides what to evict when a class is full.
 *
 * Locking: one mutex per class guards its free list and page list; the
 * page total is an atomic so that classes never take each other's locks.
 */
#include "memcached.h"
#include "slabs.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <stdio.h>
#include <string.h>

struct slabclass {
    size_t size;                /* chunk size in bytes */
    unsigned perslab;           /* chunks per page */
    size_t page_bytes;          /* bytes per page (perslab * size) */
    size_t charge;              /* bytes counted against -m per page:
                                   the whole page, or page_bytes (see
                                   full_pages) */
    struct item *free_list;     /* free chunks, linked through it->next */
    unsigned free_count;        /* chunks on free_list */
    unsigned total_pages;       /* pages owned */
    char **pages;               /* their addresses */
    unsigned pages_cap;         /* slots in pages[] */
    uint64_t requested;         /* bytes asked for by used chunks */
    char *moving;               /* page being emptied for reassign */
    struct item *moving_free;   /* its chunks that are free: off the free
                                   list, used only when nothing else is */
    unsigned moving_free_count; /* how many */
    pthread_mutex_t lock;       /* guards all of the above */
};

#define MEMCACHED_ITEM_HDR 48

/*
 * Pages come from 2 MB-aligned blocks the kernel may back with huge pages
 * (madvise; transparent_hugepage=madvise is Debian's default): items are
 * reached at random, and with 4 KB pages nearly every item touched costs
 * a TLB miss, which under a hypervisor is a two-level page walk.  A block
 * holds one or more page slots of the largest page size.  A slot given
 * back (a pooled page released over the limit) has its memory returned
 * to the system with MADV_DONTNEED and is kept on a spare list for the
 * next page; the block itself is never freed.  The spare list is an
 * array, so that a released slot is not touched (and faulted in) again
 * until it is reused.  Guarded by arena_lock, taken inside a class lock.
 */
#define BLOCK_ALIGN ((size_t)2 * 1024 * 1024)

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static bool use_hugepages = true; /* new blocks: MADV_HUGEPAGE, else NOHUGEPAGE */
static size_t slot_bytes;       /* every page fits in one slot */
static char *carve_next;        /* unused part of the newest block */
static size_t carve_left;
static char **spare;            /* released slots, memory given back */
static size_t nspare, spare_cap;
static void **blocks;           /* for slabs_destroy */
static size_t nblocks, blocks_cap;

/* A new block to carve slots from; false without memory.  Caller holds
 * arena_lock. */
static bool new_block(void)
{
    size_t want = (slot_bytes + BLOCK_ALIGN - 1) & ~(BLOCK_ALIGN - 1);
    void *b = NULL;

    if (nblocks == blocks_cap) {
        size_t cap = blocks_cap ? blocks_cap * 2 : 64;
        void **nb = realloc(blocks, cap * sizeof(*nb));
        if (nb == NULL) {
            return false;
        }
        blocks = nb;
        blocks_cap = cap;
    }
    if (posix_memalign(&b, BLOCK_ALIGN, want) != 0) {
        return false;
    }
#ifdef MADV_HUGEPAGE
    /* Off means 4 KB pages even where the system's THP mode is
     * "always". */
    (void)madvise(b, want, use_hugepages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
    blocks[nblocks++] = b;
    carve_next = b;
    carve_left = want;
    return true;
}

static void *arena_get(void)
{
    void *p = NULL;

    pthread_mutex_lock(&arena_lock);
    if (nspare > 0) {
        p = spare[--nspare];
    } else if (carve_left >= slot_bytes || new_block()) {
        p = carve_next;
        carve_next += slot_bytes;
        carve_left -= slot_bytes;
    }
    pthread_mutex_unlock(&arena_lock);
    return p;
}

/* Give slot `page` back: its memory to the system, the slot to the
 * spare list.  Returns -1 (nothing done) only when the list cannot
 * grow. */
static int arena_put(char *page)
{
    int rc = 0;

    pthread_mutex_lock(&arena_lock);
    if (nspare == spare_cap) {
        size_t cap = spare_cap ? spare_cap * 2 : 64;
        char **ns = realloc(spare, cap * sizeof(*ns));
        if (ns == NULL) {
            rc = -1;
            goto out;
        }
        spare = ns;
        spare_cap = cap;
    }
    /* The slot's bytes read as zeros when next touched. */
    (void)madvise(page, slot_bytes, MADV_DONTNEED);
    spare[nspare++] = page;
out:
    pthread_mutex_unlock(&arena_lock);
    return rc;
}

static struct slabclass classes[SLABS_MAX_CLASSES];
static unsigned nclasses;       /* highest valid class id */
static size_t mem_limit;        /* 0 = unlimited */

/*
 * Class ids of item sizes up to CLSID_TABLE_MAX, one byte per 8 bytes of
 * size, so that an allocation finds its class in one load instead of a
 * binary search (~85 instructions on every set).  Exact only when every
 * class size is a multiple of 8, as the -f series always is (no class
 * then ends inside an 8-byte step); -o slab_sizes may break that, and
 * the table is then not used.  Built by slabs_init.
 */
#define CLSID_TABLE_MAX 65536
static uint8_t clsid_table[CLSID_TABLE_MAX / 8 + 1];
static bool clsid_table_ok;
static void build_clsid_table(void);

static size_t mem_malloced;     /* bytes of pages allocated; atomic */
static size_t initial_malloced; /* counted as allocated from the start */
static bool full_pages = true;  /* charge whole pages (memcached does with
                                   slab_reassign or slab_chunk_max below
                                   the page size), else perslab * size */
static size_t page_charge;      /* a whole page's charge (full_pages) */

/*
 * The global page pool (memcached's class 0): pages given back by
 * `slabs reassign N 0` or slab_automove, still counted in
 * total_malloced, handed to the next class that needs a page before any
 * new memory is taken.  Every page fits any class (slot_bytes).  Guarded
 * by pool_lock, taken inside a class lock.
 */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static char **pool;             /* the pages */
static unsigned pool_count;     /* how many */
static unsigned pool_cap;       /* slots in pool[] */

static char *pool_take(void)
{
    char *p = NULL;

    pthread_mutex_lock(&pool_lock);
    if (pool_count > 0) {
        p = pool[--pool_count];
    }
    pthread_mutex_unlock(&pool_lock);
    return p;
}

/* Returns -1 (page not kept) only when pool[] cannot grow. */
static int pool_put(char *page)
{
    int rc = 0;

    pthread_mutex_lock(&pool_lock);
    if (pool_count == pool_cap) {
        unsigned cap = pool_cap ? pool_cap * 2 : 64;
        char **np = realloc(pool, cap * sizeof(*np));
        if (np == NULL) {
            rc = -1;
            goto out;
        }
        pool = np;
        pool_cap = cap;
    }
    pool[pool_count++] = page;
out:
    pthread_mutex_unlock(&pool_lock);
    return rc;
}

/*
 * While total_malloced is over the limit (cache_memlimit lowered it),
 * pooled pages go back to the system rather than waiting for a class
 * to take them, as memcached's memory_release(): called when a page
 * enters the pool and when the limit changes.  Only with whole-page
 * charges, where every pooled page counts the same (memcached: only
 * with slab_reassign, the one way pages reach the pool).
 */
static void release_pool(void)
{
    size_t limit = __atomic_load_n(&mem_limit, __ATOMIC_RELAXED);

    if (!full_pages || limit == 0) {
        return;
    }
    while (__atomic_load_n(&mem_malloced, __ATOMIC_RELAXED) > limit) {
        char *page = pool_take();
        if (page == NULL) {
            return;
        }
        if (arena_put(page) != 0) {
            (void)pool_put(page);
            return;
        }
        __atomic_sub_fetch(&mem_malloced, page_charge, __ATOMIC_RELAXED);
    }
}

unsigned slabs_pool_pages(void)
{
    unsigned n;

    pthread_mutex_lock(&pool_lock);
    n = pool_count;
    pthread_mutex_unlock(&pool_lock);
    return n;
}

void slabs_set_accounting(bool whole_pages, size_t initial)
{
    full_pages = whole_pages;
    initial_malloced = initial;
}
static size_t fixed_sizes[SLABS_MAX_CLASSES];   /* -o slab_sizes */
static unsigned nfixed;         /* how many; 0 = the -f series */

static void add_class(size_t size, size_t page_size)
{
    struct slabclass *c = &classes[++nclasses];

    c->size = size;
    c->perslab = (unsigned)(page_size / size);
    if (c->perslab == 0) {
        c->perslab = 1;
    }
    c->page_bytes = (size_t)c->perslab * size;
    c->charge = full_pages ? page_size : c->page_bytes;
    pthread_mutex_init(&c->lock, NULL);
}

void slabs_set_hugepages(bool on)
{
    use_hugepages = on;
}

int slabs_set_sizes(const size_t *sizes, unsigned n)
{
    if (n > SLABS_MAX_CLASSES - 3) {
        return -1;
    }
    memcpy(fixed_sizes, sizes, n * sizeof(*sizes));
    nfixed = n;
    return 0;
}

int slabs_init(size_t limit, double factor, size_t chunk_min,
               size_t chunk_max, size_t item_max, bool prealloc)
{
    size_t page_size = chunk_max * 2;
    /* memcached's first class is its 48-byte header plus chunk_min; use
     * the same sizes so `stats slabs` reads the same for the same -n and
     * -f.  Our header is smaller, so an item never needs a larger class
     * than it would there. */
    size_t size = MEMCACHED_ITEM_HDR + chunk_min;

    if (factor <= 1.0 || chunk_min == 0 || chunk_max < size ||
        item_max < size) {
        return -1;
    }
    memset(classes, 0, sizeof(classes));
    nclasses = 0;
    mem_limit = limit;
    mem_malloced = initial_malloced;
    if (page_size < item_max) {
        page_size = item_max;
    }
    /* Slots start and end on a system page: madvise in arena_put. */
    slot_bytes = (page_size + 4095) & ~(size_t)4095;
    page_charge = page_size;
    if (nfixed > 0) {
        unsigned i;
        for (i = 0; i < nfixed && fixed_sizes[i] < chunk_max; i++) {
            add_class(fixed_sizes[i], page_size);
        }
    }
    while (nfixed == 0 && nclasses < SLABS_MAX_CLASSES - 3 &&
           size <= chunk_max / factor) {
        if (size % 8) {
            size += 8 - size % 8;
        }
        add_class(size, page_size);
        size = (size_t)(size * factor);
    }
    /* Items above chunk_max are chained from chunks of these classes
     * (items.c, item_chunk.c), as in memcached: no class above it. */
    add_class(chunk_max, page_size);
    (void)prealloc;
    build_clsid_table();
    return 0;
}

void slabs_destroy(void)
{
    unsigned i;
    size_t p;

    for (i = 1; i <= nclasses; i++) {
        free(classes[i].pages);
        pthread_mutex_destroy(&classes[i].lock);
    }
    memset(classes, 0, sizeof(classes));
    nclasses = 0;
    clsid_table_ok = false;
    mem_malloced = 0;
    pthread_mutex_lock(&pool_lock);
    free(pool);
    pool = NULL;
    pool_count = pool_cap = 0;
    pthread_mutex_unlock(&pool_lock);
    for (p = 0; p < nblocks; p++) {
        free(blocks[p]);
    }
    free(blocks);
    blocks = NULL;
    nblocks = blocks_cap = 0;
    carve_next = NULL;
    carve_left = 0;
    free(spare);
    spare = NULL;
    nspare = spare_cap = 0;
}

static unsigned clsid_search(size_t size);

static void build_clsid_table(void)
{
    unsigned id;
    size_t k;

    clsid_table_ok = false;
    for (id = 1; id <= nclasses; id++) {
        if (classes[id].size <= CLSID_TABLE_MAX && classes[id].size % 8) {
            return;
        }
    }
    for (k = 0; k <= CLSID_TABLE_MAX / 8; k++) {
        clsid_table[k] = (uint8_t)clsid_search(k * 8);
    }
    clsid_table_ok = true;
}

unsigned slabs_clsid(size_t size)
{
    /* size 0 wraps around and takes the search, which refuses it */
    if (size - 1 < CLSID_TABLE_MAX && clsid_table_ok) {
        return clsid_table[(size + 7) / 8];
    }
    return clsid_search(size);
}

static unsigned clsid_search(size_t size)
{
    unsigned lo = 1;
    unsigned hi = nclasses;

    if (size == 0 || nclasses == 0 || size > classes[nclasses].size) {
        return 0;
    }
    /* Smallest class whose chunk fits: binary search. */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (classes[mid].size >= size) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

/* Add one page to class c, carving it onto the free list: from the
 * global pool if it holds one, else new memory under the limit.  Caller
 * holds c->lock.  The first page of a class is granted even over the
 * limit, as memcached does, so that every size can be stored at least
 * once. */
static int grow(struct slabclass *c)
{
    size_t had = __atomic_load_n(&mem_malloced, __ATOMIC_RELAXED);
    char *page;
    unsigned i;

    if (c->total_pages == c->pages_cap) {
        unsigned cap = c->pages_cap ? c->pages_cap * 2 : 16;
        char **np = realloc(c->pages, cap * sizeof(*np));
        if (np == NULL) {
            return -1;
        }
        c->pages = np;
        c->pages_cap = cap;
    }
    page = pool_take();
    if (page == NULL) {
        if (mem_limit && had + c->charge > mem_limit && c->total_pages > 0) {
            return -1;
        }
        page = arena_get();
        if (page == NULL) {
            return -1;
        }
        __atomic_add_fetch(&mem_malloced, c->charge, __ATOMIC_RELAXED);
    }
    c->pages[c->total_pages++] = page;
    /* Thread in reverse so chunks are handed out in address order. */
    for (i = c->perslab; i-- > 0;) {
        struct item *it = (struct item *)(page + (size_t)i * c->size);
        it->it_flags = ITEM_SLABBED;
        it->slabs_clsid = 0;
        it->refcount = 0;
        it->next = c->free_list;
        c->free_list = it;
    }
    c->free_count += c->perslab;
    return 0;
}

/* Take a chunk of class id under its lock: from the free list, else
 * (may_grow) from a new page or the page being emptied. */
static inline void *take_chunk(size_t size, unsigned id, bool may_grow)
{
    struct slabclass *c;
    struct item *it = NULL;

    if (id == 0 || id > nclasses) {
        return NULL;
    }
    c = &classes[id];
    pthread_mutex_lock(&c->lock);
    if (c->free_list != NULL || (may_grow && grow(c) == 0)) {
        it = c->free_list;
        c->free_list = it->next;
        c->free_count--;
    } else if (may_grow && c->moving_free != NULL) {
        it = c->moving_free;
        c->moving_free = it->next;
        c->moving_free_count--;
    }
    if (it != NULL) {
        c->requested += size;
        it->it_flags = 0;
        it->slabs_clsid = (uint8_t)id;
    }
    pthread_mutex_unlock(&c->lock);
    return it;
}

void *slabs_alloc(size_t size, unsigned id)
{
    return take_chunk(size, id, true);
}

void *slabs_alloc_free(size_t size, unsigned id)
{
    return take_chunk(size, id, false);
}

void slabs_resize(unsigned id, size_t from, size_t to)
{
    struct slabclass *c = &classes[id];

    pthread_mutex_lock(&c->lock);
    c->requested = c->requested - from + to;
    pthread_mutex_unlock(&c->lock);
}

void slabs_free(void *ptr, size_t size, unsigned id)
{
    struct slabclass *c = &classes[id];
    struct item *it = ptr;

    pthread_mutex_lock(&c->lock);
    it->slabs_clsid = 0;
    it->refcount = 0;
    c->requested -= size;
    if (c->moving != NULL && (char *)ptr >= c->moving &&
        (char *)ptr < c->moving + c->page_bytes) {
        /* The page is being emptied: keep the chunk off the free list. */
        it->next = c->moving_free;
        c->moving_free = it;
        c->moving_free_count++;
        __atomic_store_n(&it->it_flags, ITEM_SLABBED, __ATOMIC_RELEASE);
    } else {
        it->it_flags = ITEM_SLABBED;
        it->next = c->free_list;
        c->free_list = it;
        c->free_count++;
    }
    pthread_mutex_unlock(&c->lock);
}

/* --- page reassignment ---------------------------------------------------
 * A page moves in three steps: begin (take its free chunks out of the
 * class's free list and mark it moving), empty (items.c rescues or
 * evicts what is still stored in it; chunks freed meanwhile go to
 * moving_free, not the free list), finish (once every chunk is on
 * moving_free the page leaves src for dst or the pool).  A store that
 * finds no other chunk and no page may still take one from moving_free,
 * as in memcached, where the mover competes with the allocator: the
 * mover then meets that item again.
 */
enum reassign_result slabs_reassign_begin(int src, unsigned dst,
                                          unsigned *src_out, char **page,
                                          size_t *chunk, unsigned *count)
{
    struct slabclass *c;
    struct item **pp;
    unsigned id = (unsigned)src;
    unsigned i;

    if (src == -1) {
        unsigned best = 0;
        for (i = 1; i <= nclasses; i++) {
            if (i != dst && classes[i].total_pages >
                                (best ? classes[best].total_pages : 1)) {
                best = i;
            }
        }
        if (best == 0) {
            return REASSIGN_NOSPARE;
        }
        id = best;
    }
    if (id < 1 || id > nclasses || dst > nclasses) {
        return REASSIGN_BADCLASS;
    }
    if (id == dst) {
        return REASSIGN_SAME;
    }
    c = &classes[id];
    pthread_mutex_lock(&c->lock);
    if (c->total_pages < 2) {
        pthread_mutex_unlock(&c->lock);
        return REASSIGN_NOSPARE;
    }
    c->moving = c->pages[0];
    c->moving_free = NULL;
    c->moving_free_count = 0;
    pp = &c->free_list;
    while (*pp != NULL) {
        char *p = (char *)*pp;
        if (p >= c->moving && p < c->moving + c->page_bytes) {
            struct item *it = *pp;
            *pp = it->next;
            c->free_count--;
            it->next = c->moving_free;
            c->moving_free = it;
            c->moving_free_count++;
        } else {
            pp = &(*pp)->next;
        }
    }
    *src_out = id;
    *page = c->moving;
    *chunk = c->size;
    *count = c->perslab;
    pthread_mutex_unlock(&c->lock);
    return REASSIGN_OK;
}

void slabs_reassign_cancel(unsigned src)
{
    struct slabclass *c = &classes[src];

    pthread_mutex_lock(&c->lock);
    while (c->moving_free != NULL) {
        struct item *it = c->moving_free;
        c->moving_free = it->next;
        it->next = c->free_list;
        c->free_list = it;
        c->free_count++;
    }
    c->moving_free_count = 0;
    c->moving = NULL;
    pthread_mutex_unlock(&c->lock);
}

bool slabs_reassign_finish(unsigned src, unsigned dst)
{
    struct slabclass *c = &classes[src];
    char *page;

    pthread_mutex_lock(&c->lock);
    if (c->moving_free_count != c->perslab) {
        /* A store took a chunk back meanwhile: empty it again. */
        pthread_mutex_unlock(&c->lock);
        return false;
    }
    page = c->moving;
    c->moving = NULL;
    c->moving_free = NULL;
    c->moving_free_count = 0;
    memmove(&c->pages[0], &c->pages[1],
            sizeof(char *) * (c->total_pages - 1));
    c->total_pages--;
    pthread_mutex_unlock(&c->lock);
    /* The page stays counted in total_malloced: into the global pool,
     * from which dst takes it at once; with dst 0 (the pool itself) it
     * goes back to the system if total_malloced is over the limit. */
    if (pool_put(page) != 0) {
        if (arena_put(page) == 0) {
            __atomic_sub_fetch(&mem_malloced, c->charge, __ATOMIC_RELAXED);
        }
        /* else the page is lost to the process, and stays counted */
    }
    if (dst == 0) {
        release_pool();
    } else {
        struct slabclass *d = &classes[dst];
        pthread_mutex_lock(&d->lock);
        (void)grow(d);
        pthread_mutex_unlock(&d->lock);
    }
    return true;
}

size_t slabs_chunk_size(unsigned id)
{
    return (id >= 1 && id <= nclasses) ? classes[id].size : 0;
}

unsigned slabs_perslab(unsigned id)
{
    return (id >= 1 && id <= nclasses) ? classes[id].perslab : 0;
}

unsigned slabs_largest_class(void)
{
    return nclasses;
}

unsigned slabs_count(void)
{
    return nclasses;
}

unsigned slabs_pages(unsigned id)
{
    unsigned n;

    if (id == 0 || id > nclasses) {
        return 0;
    }
    pthread_mutex_lock(&classes[id].lock);
    n = classes[id].total_pages;
    pthread_mutex_unlock(&classes[id].lock);
    return n;
}

size_t slabs_mem_malloced(void)
{
    return __atomic_load_n(&mem_malloced, __ATOMIC_RELAXED);
}

size_t slabs_mem_limit(void)
{
    return mem_limit;
}

void slabs_set_mem_limit(size_t limit)
{
    __atomic_store_n(&mem_limit, limit, __ATOMIC_RELAXED);
    release_pool();
}

void slabs_class_stats(unsigned id, uint64_t *used, uint64_t *nfree,
                       uint64_t *requested)
{
    struct slabclass *c = &classes[id];

    pthread_mutex_lock(&c->lock);
    *used = (uint64_t)c->total_pages * c->perslab - c->free_count;
    *nfree = c->free_count;
    *requested = c->requested;
    pthread_mutex_unlock(&c->lock);
}

void slabs_stats(struct strbuf *sb, slabs_stats_fn extra)
{
    char name[64];
    unsigned id;
    unsigned active = 0;

    for (id = 1; id <= nclasses; id++) {
        struct slabclass *c = &classes[id];
        uint64_t used, nfree, req;
        unsigned pages;

        pthread_mutex_lock(&c->lock);
        pages = c->total_pages;
        pthread_mutex_unlock(&c->lock);
        if (pages == 0) {
            continue;
        }
        slabs_class_stats(id, &used, &nfree, &req);
        snprintf(name, sizeof(name), "%u:chunk_size", id);
        sb_stat(sb, name, "%zu", c->size);
        snprintf(name, sizeof(name), "%u:chunks_per_page", id);
        sb_stat(sb, name, "%u", c->perslab);
        snprintf(name, sizeof(name), "%u:total_pages", id);
        sb_stat(sb, name, "%u", pages);
        snprintf(name, sizeof(name), "%u:total_chunks", id);
        sb_stat(sb, name, "%llu", (unsigned long long)pages * c->perslab);
        snprintf(name, sizeof(name), "%u:used_chunks", id);
        sb_stat(sb, name, "%llu", (unsigned long long)used);
        snprintf(name, sizeof(name), "%u:free_chunks", id);
        sb_stat(sb, name, "%llu", (unsigned long long)nfree);
        snprintf(name, sizeof(name), "%u:free_chunks_end", id);
        sb_stat(sb, name, "0");
        if (extra != NULL) {
            extra(sb, id);
        }
        active++;
    }
    sb_stat(sb, "active_slabs", "%u", active);
    sb_stat(sb, "total_malloced", "%zu", slabs_mem_malloced());
}
