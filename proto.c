/*
 * proto.c - what the three protocols (text, meta, binary) share: the
 * hit and miss counters of a retrieval or a cas, counted the way
 * memcached counts them, and the shutdown hook main sets.  No parsing,
 * no replies: those are proto_text.c, proto_meta.c and proto_bin.c.
 */
#include "memcached.h"
#include "proto.h"
#include "items.h"
#include "stats.h"

void (*proto_shutdown_fn)(bool graceful);

/* Counters of one retrieval key (get/gets/gat/gats, binary GET/GAT,
 * meta mg): every protocol counts the way memcached does. */
void proto_count_get(const struct item *it, enum get_result why, bool touch)
{
    if (touch) {
        STAT_INCR(touch_cmds);
    } else {
        STAT_INCR(get_cmds);
    }
    if (it != NULL) {
        if (touch) {
            SLAB_STAT_INCR(it->slabs_clsid, touch_hits);
        } else {
            SLAB_STAT_INCR(it->slabs_clsid, get_hits);
        }
        return;
    }
    if (touch) {
        STAT_INCR(touch_misses);
    } else {
        STAT_INCR(get_misses);
    }
    if (why == GET_EXPIRED) {
        STAT_INCR(get_expired);
    } else if (why == GET_FLUSHED) {
        STAT_INCR(get_flushed);
    }
}

/* cas_hits / cas_badval / cas_misses after a store (every protocol). */
void proto_count_cas(unsigned clsid, enum store_mode mode,
                     enum store_result r)
{
    if (mode != STORE_MODE_CAS) {
        return;
    }
    if (r == STORE_STORED) {
        SLAB_STAT_INCR(clsid, cas_hits);
    } else if (r == STORE_EXISTS) {
        SLAB_STAT_INCR(clsid, cas_badval);
    } else if (r == STORE_NOT_FOUND) {
        STAT_INCR(cas_misses);
    }
}
