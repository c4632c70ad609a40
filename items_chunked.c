/*
 * items_chunked.c - the storage side of chunked items (doc/items.txt):
 * taking a header and its chain of chunks with eviction, freeing them,
 * and moving a header or a chunk out of a slab page being emptied.  The
 * layout and byte copying are item_chunk.c's; locking is items.c's.
 */
#include "memcached.h"
#include "items.h"
#include "items_internal.h"
#include "item_chunk.h"
#include "assoc.h"
#include "slabs.h"

#include <string.h>

/*
 * memcached's layout: a header in the class of its own size, holding the
 * key and the chain's head, then the value in chunks of the largest
 * class, the last one in the class its remainder needs.  The header's
 * slabs_clsid is the largest class, whose LRU it is on, so evicting
 * there frees whole chunked items; the header and last-chunk classes
 * fall back to evicting there too (their own LRUs may hold nothing).
 * All chunks are taken up front, so a reader never meets a short chain.
 */
struct item *items_alloc_chunked(size_t nkey, size_t nbytes)
{
    size_t hsize = item_chunk_hdr_size(nkey);
    size_t full = slabs_chunk_size(item_chunk_clsid);
    struct item_chunk *prev = NULL;
    struct item *it;

    it = items_alloc_pull(hsize, slabs_clsid(hsize), item_chunk_clsid,
                          item_chunk_clsid);
    if (it == NULL) {
        return NULL;
    }
    it->nkey = (uint8_t)nkey;
    it->nbytes = 0;
    item_set_first_chunk(it, NULL);
    while (nbytes > 0) {
        size_t take = item_chunk_take(nbytes, full);
        unsigned id = slabs_clsid(ITEM_CHUNK_HDR + take);
        struct item_chunk *ch = items_alloc_pull(ITEM_CHUNK_HDR + take, id,
                                                 item_chunk_clsid,
                                                 item_chunk_clsid);
        if (ch == NULL) {
            items_free_chunked(it);
            return NULL;
        }
        ch->next = NULL;
        ch->prev = prev;
        ch->head = it;
        ch->size = (uint32_t)take;
        __atomic_store_n(&ch->nkey, 0, __ATOMIC_RELEASE);
        if (prev == NULL) {
            item_set_first_chunk(it, ch);
        } else {
            prev->next = ch;
        }
        prev = ch;
        nbytes -= take;
    }
    it->slabs_clsid = (uint8_t)item_chunk_clsid;
    return it;
}

/* The chunks, then the header, in the class of its own size (not its
 * slabs_clsid, the LRU it is on). */
void items_free_chunked(struct item *it)
{
    struct item_chunk *ch = item_first_chunk(it);
    size_t hsize = item_chunk_hdr_size(it->nkey);

    while (ch != NULL) {
        struct item_chunk *next = ch->next;
        slabs_free(ch, ITEM_CHUNK_HDR + ch->size, ch->slabs_clsid);
        ch = next;
    }
    slabs_free(it, hsize, slabs_clsid(hsize));
}

/* --- slabs reassign ------------------------------------------------------
 * Both moves run under the item's stripe lock and only while the table's
 * is the one reference (the caller checks for the header; we check for a
 * chunk): a request holding the item may be walking its chain.
 */

/* The copy takes over the chain; the old header must not free it. */
bool items_rescue_header(struct item *it, uint32_t hv)
{
    size_t n = item_chunk_hdr_size(it->nkey);
    struct item *copy = do_item_copy_out(it, n, slabs_clsid(n));
    struct item_chunk *ch;

    if (copy == NULL) {
        return false;
    }
    for (ch = item_first_chunk(copy); ch != NULL; ch = ch->next) {
        ch->head = copy;
    }
    item_set_first_chunk(it, NULL);
    do_item_move_to(it, copy, hv);
    return true;
}

static bool owns_chunk(const struct item *head, const struct item_chunk *ch)
{
    const struct item_chunk *c;

    for (c = item_first_chunk(head); c != NULL; c = c->next) {
        if (c == ch) {
            return true;
        }
    }
    return false;
}

enum page_out item_move_chunk_locked(struct item_chunk *ch,
                                     struct item *head, uint32_t hv)
{
    size_t n;
    struct item_chunk *copy;

    if (!(head->it_flags & ITEM_LINKED) || head->nkey == 0 ||
        assoc_find(ITEM_key(head), head->nkey, hv) != head ||
        !item_is_chunked(head) || !owns_chunk(head, ch)) {
        return PAGE_OUT_NONE;
    }
    if (item_is_dead(head)) {
        do_item_unlink(head, hv);
        return PAGE_OUT_DEAD;
    }
    if (__atomic_load_n(&head->refcount, __ATOMIC_ACQUIRE) != 1) {
        return PAGE_OUT_BUSY;
    }
    n = ITEM_CHUNK_HDR + ch->size;
    copy = slabs_alloc_free(n, ch->slabs_clsid);
    if (copy == NULL) {
        do_item_unlink(head, hv);
        return PAGE_OUT_EVICTED;
    }
    memcpy(copy, ch, n);
    if (ch->prev != NULL) {
        ch->prev->next = copy;
    } else {
        item_set_first_chunk(head, copy);
    }
    if (ch->next != NULL) {
        ch->next->prev = copy;
    }
    slabs_free(ch, n, ch->slabs_clsid);
    return PAGE_OUT_CHUNK_RESCUED;
}
