/*
 * watch.h - the `watch` command: connections that stream log lines about
 * fetches, mutations and evictions as they happen.
 */
#ifndef WATCH_H
#define WATCH_H

#include "memcached.h"
#include "items.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct item;

#define WATCH_FETCHERS   0x01
#define WATCH_MUTATIONS  0x02
#define WATCH_EVICTIONS  0x04
#define WATCH_RAWCMDS    0x08
#define WATCH_SYSEVENTS  0x10
#define WATCH_CONNEVENTS 0x20

/* Categories some watcher wants; 0 when nobody watches (fast check). */
extern unsigned watch_mask;

/* Parse the watch arguments; false on an unknown one. */
bool watch_parse(char **args, int nargs, unsigned *flags);
/* Turn c into a watcher of `flags`. */
void watch_add(struct conn *c, unsigned flags);
/* Forget c (closed). */
void watch_remove(struct conn *c);
/* Move pending lines of c into its reply queue (its own worker thread). */
void watch_flush(struct conn *c);

void watch_fetch(const char *key, size_t nkey, const struct item *it,
                 const char *status, int cfd);
void watch_store(const char *key, size_t nkey, const char *status,
                 const char *cmd, int64_t ttl, unsigned clsid, int cfd,
                 size_t size);
/* The eviction line of `it`, if anyone watches evictions (items_lru.c
 * calls item_events.evicted). */
void watch_eviction(const struct item *it);
/* The item_store line of a store of `it` (text, meta or binary). */
void watch_store_item(const struct item *it, enum store_mode mode,
                      enum store_result r, int cfd);
/* The item_get line memcached logs when a store looks the key up. */
void watch_fetch_peek(const char *key, size_t nkey, int cfd);
/* conn_new (opened) or conn_close line; reason: enum conn_close_reason. */
void watch_conn_event(bool opened, int sfd, enum conn_transport t,
                      int reason);

uint64_t watch_count(void);
uint64_t watch_sent(void);
uint64_t watch_skipped(void);

#endif
