/*
 * crawler.h - the background crawler that reclaims expired and flushed
 * items, and the metadump walk behind `lru_crawler metadump`.
 */
#ifndef CRAWLER_H
#define CRAWLER_H

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
bool crawler_class_list_ok(const char *list);
/* Append one line per live item of the listed classes. */
void crawler_metadump(const char *list, struct strbuf *sb);

/* Counters for stats. */
uint64_t crawler_starts(void);
bool crawler_running(void);

#endif
