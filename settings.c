/*
 * settings.c - the one struct settings and its defaults.  Parsing the
 * command line is memcached.c's job; printing is stats.c's.
 */
#include "settings.h"

#include <string.h>

struct settings settings;

void settings_init(void)
{
    memset(&settings, 0, sizeof(settings));
    settings.maxbytes = 64 * 1024 * 1024;
    settings.maxconns = 1024;
    settings.port = 11211;
    settings.udpport = 0;
    settings.inter = NULL;
    settings.socketpath = NULL;
    settings.access = 0700;
    settings.verbose = 0;
    settings.evict_to_free = true;
    settings.factor = 1.25;
    settings.chunk_size = 48;
    settings.num_threads = 4;
    settings.reqs_per_event = 20;
    settings.use_cas = true;
    settings.backlog = 1024;
    settings.binding_protocol = PROTO_AUTO;
    settings.item_size_max = 1024 * 1024;
    settings.slab_chunk_size_max = 512 * 1024;
    settings.slab_page_size = 1024 * 1024;
    settings.maxconns_fast = true;
    settings.hashpower_init = 0;
    settings.slab_reassign = true;
    settings.slab_hugepages = true;
    settings.slab_automove = 1;
    settings.lru_crawler = true;
    settings.lru_segmented = true;
    settings.lru_maintainer = true;
    settings.lru_crawler_sleep = 100;
    settings.lru_crawler_tocrawl = 0;
    settings.flush_enabled = true;
    settings.dump_enabled = true;
    settings.shutdown_command = false;
    settings.hash_algorithm = HASH_MURMUR3;
    settings.hash_algorithm_name = "murmur3";
    settings.idle_timeout = 0;
    settings.umask = 0700;
    settings.watcher_logbuf_size = 256 * 1024;
    settings.worker_logbuf_size = 64 * 1024;
    settings.temporary_ttl = 61;
    settings.prefix_delimiter = ':';
    settings.repl_port = 11212;
    settings.repl_timeout = 5;
    settings.repl_buffer_size = 64 * 1024 * 1024;
    settings.repl_initial_sync_timeout = 30;
    settings.repl_tombstone_ttl = 3600;
    settings.repl_backlog_size = 64 * 1024 * 1024;
    settings.repl_sync_timeout = 50;
    settings.repl_idle_copy = true;
    settings.repl_wake_hold = true;
    settings.hot_lru_pct = 20;
    settings.warm_lru_pct = 40;
    settings.hot_max_factor = 0.2;
    settings.warm_max_factor = 2.0;
    settings.watch_enabled = true;
    settings.hash_expand = true;
    settings.slab_automove_window = 30;
    settings.slab_automove_ratio = 0.8;
    settings.slab_automove_freeratio = 0.01;
    settings.ssl.keyformat = 1;
    settings.ssl.wbuf_size = 16 * 1024;
    settings.ssl.min_version = 2;
}
