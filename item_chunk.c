/*
 * item_chunk.c - the byte side of chunked items: where a value's bytes
 * are, copying them in and out, walking them piece by piece.  It never
 * allocates or frees (items.c does) and takes no lock: the caller owns
 * a reference to the item, whose chain does not change while it does.
 */
#include "item_chunk.h"
#include "slabs.h"

#include <assert.h>
#include <stdlib.h>
#include <sys/uio.h>

_Static_assert(offsetof(struct item_chunk, it_flags) ==
               offsetof(struct item, it_flags), "chunk it_flags");
_Static_assert(offsetof(struct item_chunk, slabs_clsid) ==
               offsetof(struct item, slabs_clsid), "chunk slabs_clsid");
_Static_assert(offsetof(struct item_chunk, nkey) ==
               offsetof(struct item, nkey), "chunk nkey");
_Static_assert(offsetof(struct item_chunk, next) ==
               offsetof(struct item, next), "chunk next (free lists)");

size_t item_chunk_limit = SIZE_MAX;
unsigned item_chunk_clsid;
static size_t item_max_total;   /* the item size limit */

void item_chunks_init(size_t item_max)
{
    unsigned id = slabs_largest_class();
    size_t full = id ? slabs_chunk_size(id) : 0;

    item_chunk_clsid = id;
    item_chunk_limit = full < item_max ? full : SIZE_MAX;
    item_max_total = item_max;
}

size_t item_chunks_item_max(void)
{
    return item_max_total;
}

size_t item_chunk_take(size_t remain, size_t full_chunk)
{
    size_t cap = full_chunk - ITEM_CHUNK_HDR;

    return remain < cap ? remain : cap;
}

/* The chunk holding value byte off, and off within it. */
static struct item_chunk *seek(const struct item *it, size_t *off)
{
    struct item_chunk *ch = item_first_chunk(it);

    while (ch != NULL && *off >= ch->size) {
        *off -= ch->size;
        ch = ch->next;
    }
    return ch;
}

void item_value_write(struct item *it, size_t off, const void *src,
                      size_t len)
{
    const char *s = src;
    struct item_chunk *ch;

    if (!item_is_chunked(it)) {
        memcpy(ITEM_data(it) + off, src, len);
        return;
    }
    ch = seek(it, &off);
    while (len > 0) {
        size_t k;
        assert(ch != NULL);
        k = ch->size - off;
        if (k > len) {
            k = len;
        }
        memcpy(ch->data + off, s, k);
        s += k;
        len -= k;
        off = 0;
        ch = ch->next;
    }
}

void item_value_read(const struct item *it, size_t off, void *dst,
                     size_t len)
{
    char *d = dst;
    struct item_chunk *ch;

    if (!item_is_chunked(it)) {
        memcpy(dst, ITEM_data(it) + off, len);
        return;
    }
    ch = seek(it, &off);
    while (len > 0) {
        size_t k;
        assert(ch != NULL);
        k = ch->size - off;
        if (k > len) {
            k = len;
        }
        memcpy(d, ch->data + off, k);
        d += k;
        len -= k;
        off = 0;
        ch = ch->next;
    }
}

struct copy_arg {
    struct item *dst;           /* item being written */
    size_t off;                 /* where the next piece goes */
};

static bool copy_piece(void *arg, const char *p, size_t n)
{
    struct copy_arg *a = arg;

    item_value_write(a->dst, a->off, p, n);
    a->off += n;
    return true;
}

void item_value_copy(struct item *dst, size_t doff, const struct item *src,
                     size_t soff, size_t len)
{
    struct copy_arg a = { dst, doff };
    struct item_chunk *ch;

    if (!item_is_chunked(src)) {
        item_value_write(dst, doff, ITEM_data(src) + soff, len);
        return;
    }
    ch = seek(src, &soff);
    while (len > 0 && ch != NULL) {
        size_t k = ch->size - soff;
        if (k > len) {
            k = len;
        }
        copy_piece(&a, ch->data + soff, k);
        len -= k;
        soff = 0;
        ch = ch->next;
    }
}

bool item_value_ends_crlf(const struct item *it)
{
    char tail[2];

    if (it->nbytes < 2) {
        return false;
    }
    item_value_read(it, it->nbytes - 2, tail, 2);
    return tail[0] == '\r' && tail[1] == '\n';
}

bool item_value_pieces(const struct item *it, size_t len, item_piece_fn fn,
                       void *arg)
{
    const struct item_chunk *ch;

    if (!item_is_chunked(it)) {
        return len == 0 || fn(arg, ITEM_data(it), len);
    }
    for (ch = item_first_chunk(it); ch != NULL && len > 0; ch = ch->next) {
        size_t k = ch->size < len ? ch->size : len;
        if (!fn(arg, ch->data, k)) {
            return false;
        }
        len -= k;
    }
    return true;
}

struct iov_arg {
    struct iovec **iov;         /* the array */
    int *used;                  /* slots filled */
    int *size;                  /* slots allocated */
};

static bool iov_piece(void *arg, const char *p, size_t n)
{
    struct iov_arg *a = arg;

    if (*a->used == *a->size) {
        struct iovec *ni = realloc(*a->iov, sizeof(*ni) *
                                                (size_t)*a->size * 2);
        if (ni == NULL) {
            return false;
        }
        *a->iov = ni;
        *a->size *= 2;
    }
    (*a->iov)[*a->used].iov_base = (void *)p;
    (*a->iov)[*a->used].iov_len = n;
    (*a->used)++;
    return true;
}

int item_value_iovs(const struct item *it, size_t len, struct iovec **iov,
                    int *used, int *size)
{
    struct iov_arg a = { iov, used, size };

    return item_value_pieces(it, len, iov_piece, &a) ? 0 : -1;
}

void item_cursor_start_chunked(struct value_cursor *vc, struct item *it,
                               char **dst)
{
    vc->ch = item_first_chunk(it);
    vc->room = vc->ch->size;
    *dst = vc->ch->data;
}

size_t item_cursor_room_chunked(struct value_cursor *vc, char **dst,
                                size_t want)
{
    while (vc->room == 0 && vc->ch->next != NULL) {
        vc->ch = vc->ch->next;
        vc->room = vc->ch->size;
        *dst = vc->ch->data;
    }
    return want < vc->room ? want : vc->room;
}
