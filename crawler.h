/*
 * crawler.h - the background crawler that reclaims expired and flushed
 * items, and the metadump walk behind `lru_crawler metadump`.
 */
#ifndef CRAWLER_H
#define CRAWLER_H

#include "slabs.h"
#include "util.h"

enum crawler_result {
    CRAWLER_OK,
    CRAWLER_RUNNING,
    CRAWLER_BADCLASS,
    CRAWLER_NOTSTARTED
};

/* Start/stop the thread (lru_crawler enable/disable); 0 or -1. */
int crawler_start(void);
void crawler_stop(void);
/* Request an immediate pass over the classes in `list` ("all" or
 * comma-separated class ids). */
enum crawler_result crawler_crawl(const char *list);
/* `lru_crawler metadump`, a slice of the hash table at a time, so that
 * the dump of a large cache is sent as it is made, not built whole in
 * memory.  If the table grows during the walk an item may be listed
 * twice; none is missed (assoc_walk_buckets). */
struct metadump {
    bool mask[SLABS_MAX_CLASSES];   /* classes to dump */
    uint64_t next;                  /* first bucket of the next slice */
};
/* false: `list` names no valid class. */
bool crawler_metadump_begin(struct metadump *d, const char *list);
/* Append one line per live item of up to `buckets` more buckets; true
 * when the walk is complete. */
bool crawler_metadump_step(struct metadump *d, uint64_t buckets,
                           struct strbuf *sb);

/* Counters for stats. */
uint64_t crawler_starts(void);
bool crawler_running(void);

/* The earliest unix second at which an item the automatic pass has not
 * yet seen may die (expire, or fall to a flush_all); 0: none.  Storage
 * notes every deadline it sets; a full pass starts again from 0 and
 * notes the deadlines of the live items it walks.  The automatic pass
 * (every CRAWL_INTERVAL seconds) runs only once that second has come: a
 * cache whose items never expire is not walked for nothing, as memcached
 * does not crawl a class without deadlines. */
extern uint32_t crawler_due;    /* atomic */
void crawler_lower_due(uint32_t t);

static inline void crawler_note_deadline(uint32_t t)
{
    uint32_t due;

    if (t == 0) {
        return;
    }
    due = __atomic_load_n(&crawler_due, __ATOMIC_RELAXED);
    if (due == 0 || t < due) {
        crawler_lower_due(t);
    }
}

#endif
