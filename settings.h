/*
 * settings.h - struct settings: one field per command-line option, filled
 * by memcached.c and read by everyone else.
 */
#ifndef SETTINGS_H
#define SETTINGS_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

enum proto_mode {
    PROTO_AUTO,                 /* detect per connection by first byte */
    PROTO_ASCII,                /* text (and meta) only */
    PROTO_BINARY                /* binary only */
};

enum hash_kind {
    HASH_MURMUR3,
    HASH_JENKINS
};

/* Longest TCP congestion control name, NUL included (the kernel's
 * TCP_CA_NAME_MAX). */
#define REPL_CC_NAME_MAX 16

struct settings {
    size_t maxbytes;            /* -m: memory limit for item storage */
    int maxconns;               /* -c: simultaneous connections */
    int port;                   /* -p: TCP port, 0 = none */
    int udpport;                /* -U: UDP port, 0 off, -1 any free one */
    char *inter;                /* -l: listen addresses, comma separated */
    char *socketpath;           /* -s: unix socket path, NULL = none */
    int access;                 /* -a: unix socket permissions */
    int verbose;                /* -v count */
    bool evict_to_free;         /* false with -M */
    double factor;              /* -f: slab growth factor */
    int chunk_size;             /* -n: minimum key+value+flags space */
    int num_threads;            /* -t: worker threads */
    int reqs_per_event;         /* -R: requests per event before yield */
    bool use_cas;               /* false with -C */
    int backlog;                /* -b: listen backlog */
    enum proto_mode binding_protocol;   /* -B */
    int item_size_max;          /* -I: largest item */
    int slab_chunk_size_max;    /* -o slab_chunk_max */
    int slab_page_size;         /* bytes per slab page */
    bool maxconns_fast;         /* -o maxconns_fast: refuse at once */
    int hashpower_init;         /* -o hashpower: initial table size log2 */
    bool slab_reassign;         /* -o slab_reassign */
    bool slab_hugepages;        /* -o slab_hugepages: MADV_HUGEPAGE */
    int slab_automove;          /* -o slab_automove: 0, 1 or 2 */
    bool lru_crawler;           /* -o lru_crawler / no_lru_crawler */
    uint32_t lru_crawler_sleep; /* -o lru_crawler_sleep: usec per item */
    uint32_t lru_crawler_tocrawl;   /* -o lru_crawler_tocrawl: 0 = all */
    bool flush_enabled;         /* false with -F */
    bool dump_enabled;          /* false with -X */
    bool shutdown_command;      /* true with -A */
    enum hash_kind hash_algorithm;  /* -o hash_algorithm */
    int idle_timeout;           /* -o idle_timeout: seconds, 0 = never */
    bool lock_memory;           /* -k */
    bool maximize_core;         /* -r */
    bool detail_enabled;        /* stats detail on|off */
    int umask;                  /* umask for the unix socket, octal */
    char *username;             /* -u */
    char *pid_file;             /* -P */
    bool daemonize;             /* -d */
    bool prealloc;              /* -L: allocate all memory at start */
    int watcher_logbuf_size;    /* -o watcher_logbuf_size */
    int worker_logbuf_size;     /* -o worker_logbuf_size */
    bool lru_segmented;         /* hot/warm/cold LRU (default); false
                                   with no_modern, no_lru_maintainer or
                                   `lru mode flat` */
    bool lru_maintainer;        /* run the LRU maintainer thread */
    bool temp_lru;              /* -o temporary_ttl given */
    int temporary_ttl;          /* -o temporary_ttl */
    char *hash_algorithm_name;  /* name as printed in stats settings */
    int hot_lru_pct;            /* -o hot_lru_pct: HOT's share of a class */
    int warm_lru_pct;           /* -o warm_lru_pct: WARM's share */
    double hot_max_factor;      /* -o hot_max_factor: HOT age limit, as a
                                   multiple of COLD's tail age */
    double warm_max_factor;     /* -o warm_max_factor: same for WARM */
    bool sasl;                  /* -S: SASL required (binary only) */
    char *sasl_pwdb;            /* -o sasl_pwdb / MEMCACHED_SASL_PWDB */
    char *auth_file;            /* -Y: text protocol users file */
    char *monitor_listen;       /* -o monitor_listen: stats-only port */
    char *repl_peer;            /* -x: peer HOST[:PORT] */
    int repl_port;              /* -o repl_port: our replication port */
    char *repl_listen;          /* -o repl_listen: its address */
    char *repl_secret_file;     /* -o repl_secret_file */
    char *repl_tcp_congestion;  /* -o repl_tcp_congestion (NULL: cubic) */
    bool repl_tls;              /* -o repl_tls=1: TLS on the link */
    char *repl_tls_cert;        /* -o repl_tls_cert: PEM chain */
    char *repl_tls_key;         /* -o repl_tls_key: PEM key */
    char *repl_tls_ca;          /* -o repl_tls_ca: PEM CAs to verify */
    int repl_timeout;           /* -o repl_timeout: seconds */
    size_t repl_buffer_size;    /* -o repl_buffer_size: bytes */
    int repl_initial_sync_timeout;  /* -o repl_initial_sync_timeout */
    bool repl_stall_gate;           /* -o repl_stall_gate: regate after a stall */
    bool repl_wake_hold;            /* -o repl_wake_hold: hold requests after a stall */
    int repl_tombstone_ttl;     /* -o repl_tombstone_ttl: seconds */
    size_t repl_backlog_size;   /* -o repl_backlog_size: bytes, 0 = none */
    bool repl_sync;             /* -o repl_sync=1: reply after peer ack */
    int repl_sync_timeout;      /* -o repl_sync_timeout: milliseconds */
    bool repl_idle_copy;        /* -o repl_idle_copy: full copy SCHED_IDLE */
    char prefix_delimiter;      /* -D: key prefix end for stats detail */
    bool watch_enabled;         /* false with -W: `watch` refused */
    int num_napi_ids;           /* -N: accepted, no effect (no NAPI) */
    bool hash_expand;           /* false with -o no_hashexpand */
    int slab_automove_window;   /* -o slab_automove_window: samples */
    double slab_automove_ratio; /* -o slab_automove_ratio: age ratio for
                                   slab_automove=1 */
    double slab_automove_freeratio; /* -o ..._freeratio: no effect */
    int tail_repair_time;       /* -o tail_repair_time: no effect */
    unsigned read_buf_mem_limit;    /* -o read_buf_mem_limit: bytes,
                                       shown, not enforced */
    char *slab_sizes;           /* -o slab_sizes: "size-size-...", NULL */
    char *memory_file;          /* -e: memory file for a warm restart,
                                   NULL = none (doc/restart.txt) */
    struct settings_ssl {
        bool enabled;           /* -Z: TLS on the client ports */
        char *chain_cert;       /* -o ssl_chain_cert */
        char *key;              /* -o ssl_key */
        int verify_mode;        /* -o ssl_verify_mode, as OpenSSL flags */
        int keyformat;          /* -o ssl_keyformat (1: PEM) */
        char *ciphers;          /* -o ssl_ciphers */
        char *ca_cert;          /* -o ssl_ca_cert */
        unsigned wbuf_size;     /* -o ssl_wbuf_size: bytes */
        bool session_cache;     /* -o ssl_session_cache */
        bool kernel_tls;        /* -o ssl_kernel_tls */
        int min_version;        /* -o ssl_min_version: 0..3 (tlsv1.N) */
    } ssl;                      /* client-port TLS (tls.c), as memcached */
};

extern struct settings settings;

/* Fill settings with memcached 1.6's defaults. */
void settings_init(void);

#endif
