/*
 * options.c - the command line into struct settings: the -h text, the
 * short and long options, and the -o sub-options with their checks.
 * Acting on the settings is main()'s job (memcached.c) and the modules'.
 */
#include "options.h"
#include "options_compat.h"
#include "hash.h"
#include "memcached.h"
#include "settings.h"
#include "util.h"

#include <event2/event.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef ENABLE_SASL
#define SASL_HELP \
"-S, --enable-sasl         turn on SASL authentication (binary protocol\n" \
"                          only), by Cyrus SASL: mechanisms and sasldb\n" \
"                          from memcached.conf in $SASL_CONF_PATH,\n" \
"                          /etc/sasl or /etc/sasl2; $MEMCACHED_SASL_PWDB\n" \
"                          (or -o sasl_pwdb) names a \"user:password\" file\n" \
"                          checked first for PLAIN; with that file and no\n" \
"                          memcached.conf, PLAIN is the only mechanism\n"
#else
#define SASL_HELP \
"-S, --enable-sasl         turn on SASL authentication (binary protocol\n" \
"                          only): PLAIN, against the \"user:password\" file\n" \
"                          of $MEMCACHED_SASL_PWDB or -o sasl_pwdb (this\n" \
"                          build has no Cyrus SASL)\n"
#endif

/* -h: the text after the version line.  The options memcached 1.6.18
 * takes, with what they do here; t/manpage.t checks that the man page
 * names every one. */
static const char usage_text[] =
"-p, --port=<num>          TCP port to listen on (default: 11211, 0: off,\n"
"                          -1: any free port)\n"
"-U, --udp-port=<num>      UDP port to listen on (default: 0, off; -1: any\n"
"                          free port); see doc/protocol.txt, \"UDP\"\n"
"-s, --unix-socket=<file>  UNIX socket to listen on (disables network)\n"
"-a, --unix-mask=<mask>    access mask for the UNIX socket, in octal\n"
"                          (default: 700)\n"
"-A, --enable-shutdown     enable ascii \"shutdown\" command\n"
"-l, --listen=<addr>       interface to listen on (default: INADDR_ANY);\n"
"                          several may be given, separated by commas;\n"
"                          with TLS (-Z) a 'notls' prefix leaves one in\n"
"                          plain text (-l notls:<ip>:<port>)\n"
"-d, --daemon              run as a daemon\n"
"-r, --enable-coredumps    maximize core file limit\n"
"-u, --user=<user>         assume identity of <username> (only when run as\n"
"                          root)\n"
"-m, --memory-limit=<num>  item memory in megabytes (default: 64)\n"
"-M, --disable-evictions   return error on memory exhausted instead of\n"
"                          evicting\n"
"-c, --conn-limit=<num>    max simultaneous connections (default: 1024)\n"
"-k, --lock-memory         lock down all paged memory\n"
"-v, --verbose             verbose (print errors/warnings while in event\n"
"                          loop)\n"
"-vv                       very verbose (also print client commands and\n"
"                          state changes)\n"
"-vvv                      extremely verbose (also print internal state\n"
"                          transitions)\n"
"-h, --help                print this help and exit\n"
"-i, --license             print the licences and exit\n"
"-V, --version             print version and exit\n"
"-P, --pidfile=<file>      save PID in <file>, only used with -d option\n"
"-e, --memory-file=<file>  warm restart: on SIGUSR1 or SIGTERM the items\n"
"                          are saved to <file> (and <file>.meta), and read\n"
"                          back at the next start; SIGINT stops without\n"
"                          saving (doc/restart.txt)\n"
"-f, --slab-growth-factor=<num> chunk size growth factor (default: 1.25)\n"
"-n, --slab-min-size=<bytes> min space used for key+value+flags\n"
"                          (default: 48)\n"
"-L, --enable-largepages   same as -o slab_hugepages=1 (the default);\n"
"                          memory is not preallocated\n"
"-t, --threads=<num>       number of threads to use (default: 4)\n"
"-D <char>                 use <char> as the delimiter between key prefixes\n"
"                          and IDs, for `stats detail` (default: \":\")\n"
"-R, --max-reqs-per-event  maximum number of requests per event, limits\n"
"                          the requests processed per connection to\n"
"                          prevent starvation (default: 20)\n"
"-C, --disable-cas         disable use of CAS\n"
"-b, --listen-backlog=<num> set the backlog queue limit (default: 1024)\n"
"-B, --protocol=<name>     protocol - one of ascii, binary, or auto\n"
"                          (default: auto-negotiate)\n"
"-I, --max-item-size=<num> adjusts max item size (default: 1m, min: 1k,\n"
"                          max: 1024m)\n"
"-Z, --enable-ssl          enable TLS/SSL on the client ports (OpenSSL)\n"
SASL_HELP
"-Y, --auth-file=<file>    text protocol authentication: the first command\n"
"                          must be \"set <any> 0 0 <len>\" with \"user pass\"\n"
"                          as data; the file has \"user:pass\" lines\n"
"-F, --disable-flush-all   disable flush_all command\n"
"-X, --disable-dumping     disable stats cachedump and lru_crawler\n"
"                          metadump\n"
"-W, --disable-watch       disable watch commands (live logging)\n"
"-N, --napi-ids=<num>      accepted and shown in stats settings; no effect\n"
"                          (no NAPI-based thread selection here)\n"
"-x, --peer=<host[:port]>  pair with the paircached node whose replication\n"
"                          port is there (default port 11212)\n"
"-o, --extended            comma separated list of extended options\n"
"                          most options have a 'no_' prefix to disable\n"
"   - maxconns_fast:       immediately close new connections after limit\n"
"                          (default: enabled)\n"
"   - hashpower:           an integer multiplier for how large the hash\n"
"                          table should be; grows on its own (default: 16)\n"
"   - slab_reassign:       allow slab classes to give pages back\n"
"                          (default: enabled)\n"
"   - slab_automove:       0 off, 1 or 2 (default: 1); no_slab_automove: 0\n"
"   - slab_automove_window: samples (one a second) slab_automove=1\n"
"                          judges a class over (default: 30)\n"
"   - slab_automove_ratio: a class evicting with items younger than this\n"
"                          times the oldest class's takes one of its\n"
"                          pages (default: 0.8)\n"
"   - slab_automove_freeratio: accepted and shown in stats settings; no\n"
"                          effect (memcached uses it with extstore)\n"
"   - slab_sizes:          chunk sizes to use instead of the -f series,\n"
"                          rising, separated by '-' (e.g. 96-192-384)\n"
"   - no_chunked_items:    slab_chunk_max = 1m (one chunk per item)\n"
"   - slab_hugepages:      1 (default): ask for transparent huge pages\n"
"                          for item memory; 0: 4 KB pages\n"
"   - slab_chunk_max:      largest slab chunk; bigger items are chained\n"
"                          from chunks (default: 512k)\n"
"   - lru_crawler:         enable the background expired-item crawler\n"
"                          (default: enabled)\n"
"   - lru_crawler_sleep:   microseconds to sleep between crawl slices\n"
"                          (default: 100)\n"
"   - lru_crawler_tocrawl: max items to crawl per slab per run\n"
"                          (default: 0, unlimited)\n"
"   - idle_timeout:        seconds before an idle connection is closed\n"
"                          (default: 0, never)\n"
"   - hash_algorithm:      murmur3 (default) or jenkins; xxh3 is taken as\n"
"                          murmur3 (with a warning)\n"
"   - no_hashexpand:       never grow the hash table\n"
"   - watcher_logbuf_size: size in kilobytes of per-watcher buffers\n"
"                          (default: 256)\n"
"   - worker_logbuf_size:  size in kilobytes of per-worker log buffers\n"
"                          (default: 64)\n"
"   - sasl_pwdb:           password file for -S (\"user:password\" lines);\n"
"                          overrides $MEMCACHED_SASL_PWDB\n"
"   - repl_port:           this node's replication port (default: 11212)\n"
"   - repl_listen:         its address (default: the first -l address)\n"
"   - repl_secret_file:    shared secret for the pair (first line); needed\n"
"                          when the replication port is not on loopback\n"
"   - repl_tls:            1: encrypt the replication link with TLS\n"
"   - repl_tls_cert:       this node's certificate chain (PEM)\n"
"   - repl_tls_key:        its private key (PEM)\n"
"   - repl_tls_ca:         CA certificates (PEM): both nodes must present\n"
"                          a certificate signed by one of them\n"
"   - repl_timeout:        seconds without a word before the link is\n"
"                          dropped and redialled (default: 5)\n"
"   - repl_buffer_size:    megabytes queued for the peer before the link\n"
"                          is dropped to resync (default: 64)\n"
"   - repl_sync:           1: a write is answered only once the peer has\n"
"                          applied it, or after repl_sync_timeout\n"
"   - repl_sync_timeout:   milliseconds a synchronous write waits (50)\n"
"   - repl_tcp_congestion: TCP congestion control of the replication\n"
"                          link (default: cubic; system: the kernel's)\n"
"   - repl_idle_copy:      1 (default): a full copy runs at idle CPU\n"
"                          priority, so clients on the machine come first;\n"
"                          0: at normal priority\n"
"   - repl_backlog_size:   megabytes of recent writes kept so that a peer\n"
"                          returning within them only gets what it missed\n"
"                          (default: 64; 0: always resync in full)\n"
"   - repl_tombstone_ttl:  seconds a deleted key is remembered, so that a\n"
"                          resync cannot bring it back (default: 3600)\n"
"   - repl_initial_sync_timeout: seconds the client port stays closed\n"
"                          waiting for a peer to answer (default: 30); a\n"
"                          copy that is arriving keeps it closed longer\n"
"   - repl_stall_gate:     1: after this process was stopped for\n"
"                          repl_timeout or more, close the client port and\n"
"                          connections until caught up with the peer\n"
"                          (default: 0)\n"
"   - repl_wake_hold:      after a stall of 1 s or more, client requests\n"
"                          wait until it has caught up with the peer\n"
"                          (one round trip once linked), at most\n"
"                          repl_timeout (default: 1; 0: a request that\n"
"                          waited through the stall waits for the next\n"
"                          replication tick only)\n"
"   - monitor_listen:      HOST:PORT on loopback for monitoring without\n"
"                          authentication: only stats, version and quit\n"
"   - modern:              accepted for compatibility; the defaults are\n"
"                          already the modern ones\n"
"   - no_modern:           memcached 1.4's defaults: slab_chunk_max=1m,\n"
"                          no slab_reassign or automove, no maxconns_fast,\n"
"                          no LRU crawler, one flat LRU per class and no\n"
"                          LRU maintainer, jenkins hash\n"
"   - tail_repair_time:    accepted and shown in stats settings (at least\n"
"                          10); no effect\n"
"   - read_buf_mem_limit:  megabytes of pending responses, split over the\n"
"                          worker threads, as memcached (doc/protocol.txt)\n"
"   - lru_maintainer:      segmented LRU (hot/warm/cold per class) and\n"
"                          its background thread (default)\n"
"   - no_lru_maintainer:   one flat LRU per class, no maintainer thread\n"
"   - temporary_ttl:       items with a TTL at most this many seconds go\n"
"                          to a TEMP LRU, never evicted, only reclaimed\n"
"   - track_sizes:         accepted; stats sizes stays disabled\n"
"   - drop_privileges (and its no_ form): accepted; no seccomp sandbox\n"
"   - inline_ascii_resp, sock_cookie_id, resp_obj_mem_limit: accepted;\n"
"                          no effect\n"
"   - ssl_chain_cert:      certificate chain file in PEM format\n"
"   - ssl_key:             private key, if not part of the -ssl_chain_cert\n"
"   - ssl_keyformat:       private key format (PEM, DER or ENGINE) (default: PEM)\n"
"   - ssl_verify_mode:     peer certificate verification mode, default is 0(None).\n"
"                          valid values are 0(None), 1(Request), 2(Require)\n"
"                          or 3(Once)\n"
"   - ssl_ciphers:         specify cipher list to be used\n"
"   - ssl_ca_cert:         PEM format file of acceptable client CA's\n"
"   - ssl_wbuf_size:       size in kilobytes of per-connection SSL output buffer\n"
"                          (default: 16)\n"
"   - ssl_session_cache:   enable server-side SSL session cache, to support session\n"
"                          resumption\n"
"   - ssl_kernel_tls:      enable kernel TLS offload\n"
"   - ssl_min_version:     minimum protocol version to accept (default: tlsv1.2)\n"
"                          valid values are 0(tlsv1.0), 1(tlsv1.1), 2(tlsv1.2), or 3(tlsv1.3).\n"
"                          A TLS handshake must end within 10 seconds (or\n"
"                          idle_timeout, if shorter): slower ones are\n"
"                          closed and counted in ssl_handshake_errors\n"
"   - ext_*:               extstore tuning, accepted with no effect;\n"
"                          extstore itself (its path option) is refused\n"
"   - hot_lru_pct, warm_lru_pct: percent of a class's memory HOT and\n"
"                          WARM may hold (default: 20, 40)\n"
"   - hot_max_factor, warm_max_factor: HOT and WARM items older than\n"
"                          this times COLD's tail age go to COLD\n"
"                          (default: 0.2, 2.0)\n";

static void usage(void)
{
    printf("memcached %s\n", SERVER_VERSION);
    fputs(usage_text, stdout);
}

/* -i: we ship no licence text of our own yet; name what we link. */
static void license(void)
{
    printf("memcached %s\n\n", SERVER_VERSION);
    printf("paircached carries no licence text of its own yet: see its\n"
           "source tree.  It links libevent %s (3-clause BSD licence,\n"
           "https://libevent.org/LICENSE.txt)"
#ifdef ENABLE_TLS
           " and OpenSSL (Apache License 2.0)"
#endif
           ".\n", event_get_version());
}

/* Parse "<num>[k|m|g]" as bytes. */
static bool parse_size(const char *s, size_t *out)
{
    char buf[32];
    size_t len = strlen(s);
    uint64_t mult = 1;
    uint64_t v;

    if (len == 0 || len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, len + 1);
    switch (buf[len - 1]) {
    case 'k': case 'K':
        mult = 1024;
        buf[len - 1] = '\0';
        break;
    case 'm': case 'M':
        mult = 1024 * 1024;
        buf[len - 1] = '\0';
        break;
    case 'g': case 'G':
        mult = 1024ULL * 1024 * 1024;
        buf[len - 1] = '\0';
        break;
    default:
        break;
    }
    if (!safe_strtoull(buf, &v) || v > SIZE_MAX / mult) {
        return false;
    }
    *out = (size_t)(v * mult);
    return true;
}

static bool parse_int(const char *s, int min, int max, int *out)
{
    int32_t v;

    if (!safe_strtol(s, &v) || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* A 0|1 option value; false with a message naming the option. */
static bool parse_flag(const char *name, const char *val, bool *out)
{
    int n;

    if (!parse_int(val, 0, 1, &n)) {
        fprintf(stderr, "%s takes 0 or 1\n", name);
        return false;
    }
    *out = n == 1;
    return true;
}

/* --- -o sub-options ---------------------------------------------------------
 * One row per option in xopts[] below: most set a switch, read 0 or 1, a
 * whole number in a range or a string; the rest have a small parser of
 * their own (xo_*), each printing its own message.  Unknown names go on
 * to options_compat.c.
 */
enum xo_kind {
    XO_ON,      /* no value needed: *b = on (a value is ignored) */
    XO_FLAG,    /* 0 or 1 into *b */
    XO_INT,     /* min..max into *i, else err */
    XO_STR,     /* a copy into *s */
    XO_FN,      /* fn(opt, val), which checks val itself */
};

struct xopt {
    const char *name;
    enum xo_kind kind;
    bool *b;
    bool on;
    int *i;
    int min, max;
    const char *err;
    char **s;
    bool (*fn)(const char *opt, char *val);
};

static bool need_val(const char *opt, const char *val)
{
    if (val == NULL) {
        fprintf(stderr, "Missing value for -o %s\n", opt);
        return false;
    }
    return true;
}

static bool xo_hashpower(const char *opt, char *val)
{
    int *hp = &settings.hashpower_init;

    if (!need_val(opt, val)) {
        return false;
    }
    if (!parse_int(val, 0, INT32_MAX, hp)) {
        fprintf(stderr, "Invalid hashpower: %s\n", val);
        return false;
    }
    if (*hp < 12) {
        fprintf(stderr, "Initial hashtable multiplier of %d is too low\n",
                *hp);
        return false;
    }
    if (*hp > 32) {
        fprintf(stderr, "Initial hashtable multiplier of %d is too high\n"
                "Choose a value based on \"STAT hash_power_level\" from a "
                "running instance\n", *hp);
        return false;
    }
    return true;
}

static bool xo_slab_automove(const char *opt, char *val)
{
    (void)opt;
    if (val == NULL) {
        settings.slab_automove = 1;
    } else if (!parse_int(val, 0, 2, &settings.slab_automove)) {
        fprintf(stderr, "slab_automove must be between 0 and 2\n");
        return false;
    }
    return true;
}

static bool xo_slab_chunk_max(const char *opt, char *val)
{
    size_t sz;

    if (!need_val(opt, val)) {
        return false;
    }
    if (!parse_size(val, &sz) || sz < 1024 || sz > 512 * 1024) {
        fprintf(stderr, "slab_chunk_max must be between 1k and 512k\n");
        return false;
    }
    settings.slab_chunk_size_max = (int)sz;
    options_compat_chunk_max_given();
    return true;
}

static bool xo_lru_crawler_sleep(const char *opt, char *val)
{
    int n;

    if (!need_val(opt, val)) {
        return false;
    }
    if (!parse_int(val, 0, 1000000, &n)) {
        fprintf(stderr, "lru_crawler_sleep must be between 0 and 1 "
                        "second\n");
        return false;
    }
    settings.lru_crawler_sleep = (uint32_t)n;
    return true;
}

static bool xo_lru_crawler_tocrawl(const char *opt, char *val)
{
    if (!need_val(opt, val)) {
        return false;
    }
    if (!safe_strtoul(val, &settings.lru_crawler_tocrawl)) {
        fprintf(stderr, "lru_crawler_tocrawl takes a number\n");
        return false;
    }
    return true;
}

static bool xo_hash_algorithm(const char *opt, char *val)
{
    if (!need_val(opt, val)) {
        return false;
    }
    if (strcmp(val, "xxh3") == 0) {
        fprintf(stderr, "hash_algorithm xxh3 is not built in: using "
                        "murmur3\n");
        val = "murmur3";
    }
    if (hash_init(val) != 0) {
        fprintf(stderr, "Unknown hash_algorithm option (jenkins, murmur3, "
                        "xxh3)\n");
        return false;
    }
    settings.hash_algorithm_name = strdup(val);
    return true;
}

/* watcher_logbuf_size and worker_logbuf_size: kilobytes. */
static bool xo_logbuf_size(const char *opt, char *val)
{
    int n;

    if (!need_val(opt, val)) {
        return false;
    }
    if (!parse_int(val, 1, 1024 * 1024, &n)) {
        fprintf(stderr, "%s takes a size in kilobytes\n", opt);
        return false;
    }
    *(opt[1] == 'a' ? &settings.watcher_logbuf_size
                    : &settings.worker_logbuf_size) = n * 1024;
    return true;
}

/* hot_max_factor and warm_max_factor. */
static bool xo_max_factor(const char *opt, char *val)
{
    double f;

    if (!need_val(opt, val)) {
        return false;
    }
    if (!safe_strtod(val, &f) || f <= 0) {
        fprintf(stderr, "%s must be greater than 0\n", opt);
        return false;
    }
    *(opt[0] == 'h' ? &settings.hot_max_factor
                    : &settings.warm_max_factor) = f;
    return true;
}

static bool xo_repl_tcp_congestion(const char *opt, char *val)
{
    if (!need_val(opt, val)) {
        return false;
    }
    if (val[0] == '\0' || strlen(val) >= REPL_CC_NAME_MAX) {
        fprintf(stderr, "repl_tcp_congestion takes an algorithm name (at "
                "most %d characters) or \"system\"\n", REPL_CC_NAME_MAX - 1);
        return false;
    }
    settings.repl_tcp_congestion = strdup(val);
    return true;
}

/* repl_backlog_size (0..64k, 0: none) and repl_buffer_size: megabytes. */
static bool xo_repl_megabytes(const char *opt, char *val)
{
    bool backlog = strcmp(opt, "repl_backlog_size") == 0;
    int n;

    if (!need_val(opt, val)) {
        return false;
    }
    if (!parse_int(val, backlog ? 0 : 1, backlog ? 64 * 1024 : 1024 * 1024,
                   &n)) {
        fprintf(stderr, "%s takes megabytes%s\n", opt,
                backlog ? " (0: none)" : "");
        return false;
    }
    *(backlog ? &settings.repl_backlog_size : &settings.repl_buffer_size) =
        (size_t)n * 1024 * 1024;
    return true;
}

static bool xo_monitor_listen(const char *opt, char *val)
{
    if (!need_val(opt, val)) {
        return false;
    }
    if (strchr(val, ':') == NULL) {
        fprintf(stderr, "monitor_listen takes HOST:PORT\n");
        return false;
    }
    settings.monitor_listen = strdup(val);
    return true;
}

#define XO_SWITCH(n, f, v) { .name = n, .kind = XO_ON, .b = &settings.f, \
                             .on = v }
#define XO_01(n, f) { .name = n, .kind = XO_FLAG, .b = &settings.f }
#define XO_NUM(n, f, lo, hi, e) { .name = n, .kind = XO_INT, \
                                  .i = &settings.f, .min = lo, .max = hi, \
                                  .err = e }
#define XO_TEXT(n, f) { .name = n, .kind = XO_STR, .s = &settings.f }
#define XO_CALL(n, fun) { .name = n, .kind = XO_FN, .fn = fun }

static const struct xopt xopts[] = {
    XO_SWITCH("maxconns_fast", maxconns_fast, true),
    XO_SWITCH("no_maxconns_fast", maxconns_fast, false),
    XO_CALL("hashpower", xo_hashpower),
    XO_SWITCH("slab_reassign", slab_reassign, true),
    XO_SWITCH("no_slab_reassign", slab_reassign, false),
    XO_01("slab_hugepages", slab_hugepages),
    XO_CALL("slab_automove", xo_slab_automove),
    XO_CALL("slab_chunk_max", xo_slab_chunk_max),
    XO_SWITCH("lru_crawler", lru_crawler, true),
    XO_SWITCH("no_lru_crawler", lru_crawler, false),
    XO_CALL("lru_crawler_sleep", xo_lru_crawler_sleep),
    XO_CALL("lru_crawler_tocrawl", xo_lru_crawler_tocrawl),
    XO_NUM("idle_timeout", idle_timeout, 0, INT32_MAX,
           "idle_timeout takes a number of seconds"),
    XO_CALL("hash_algorithm", xo_hash_algorithm),
    XO_CALL("watcher_logbuf_size", xo_logbuf_size),
    XO_CALL("worker_logbuf_size", xo_logbuf_size),
    XO_NUM("hot_lru_pct", hot_lru_pct, 1, 80,
           "hot_lru_pct must be between 1 and 80"),
    XO_NUM("warm_lru_pct", warm_lru_pct, 1, 80,
           "warm_lru_pct must be between 1 and 80"),
    XO_CALL("hot_max_factor", xo_max_factor),
    XO_CALL("warm_max_factor", xo_max_factor),
    XO_NUM("repl_port", repl_port, 1, 65535,
           "repl_port must be a port number"),
    XO_TEXT("repl_listen", repl_listen),
    XO_TEXT("repl_secret_file", repl_secret_file),
    XO_01("repl_tls", repl_tls),
    XO_CALL("repl_tcp_congestion", xo_repl_tcp_congestion),
    XO_01("repl_idle_copy", repl_idle_copy),
    XO_TEXT("repl_tls_cert", repl_tls_cert),
    XO_TEXT("repl_tls_key", repl_tls_key),
    XO_TEXT("repl_tls_ca", repl_tls_ca),
    XO_NUM("repl_timeout", repl_timeout, 1, 3600,
           "repl_timeout takes 1..3600 seconds"),
    XO_NUM("repl_initial_sync_timeout", repl_initial_sync_timeout, 0, 86400,
           "repl_initial_sync_timeout takes seconds"),
    XO_01("repl_stall_gate", repl_stall_gate),
    XO_01("repl_wake_hold", repl_wake_hold),
    XO_NUM("repl_tombstone_ttl", repl_tombstone_ttl, 1, 30 * 86400,
           "repl_tombstone_ttl takes 1..2592000 seconds"),
    XO_01("repl_sync", repl_sync),
    XO_NUM("repl_sync_timeout", repl_sync_timeout, 1, 60000,
           "repl_sync_timeout takes 1..60000 ms"),
    XO_CALL("repl_backlog_size", xo_repl_megabytes),
    XO_CALL("repl_buffer_size", xo_repl_megabytes),
    XO_CALL("monitor_listen", xo_monitor_listen),
    XO_TEXT("sasl_pwdb", sasl_pwdb),
};

/* Apply one row to val. */
static bool xopt_apply(const struct xopt *x, const char *opt, char *val)
{
    switch (x->kind) {
    case XO_ON:
        *x->b = x->on;
        return true;
    case XO_FLAG:
        return need_val(opt, val) && parse_flag(opt, val, x->b);
    case XO_INT:
        if (!need_val(opt, val)) {
            return false;
        }
        if (!parse_int(val, x->min, x->max, x->i)) {
            fprintf(stderr, "%s\n", x->err);
            return false;
        }
        return true;
    case XO_STR:
        if (!need_val(opt, val)) {
            return false;
        }
        *x->s = strdup(val);
        return true;
    case XO_FN:
    default:
        return x->fn(opt, val);
    }
}

/* One -o key[=value] option; returns false with a message on error. */
static bool extended_option(char *opt)
{
    char *val = strchr(opt, '=');
    size_t i;

    if (val != NULL) {
        *val++ = '\0';
    }
    for (i = 0; i < sizeof(xopts) / sizeof(xopts[0]); i++) {
        if (strcmp(opt, xopts[i].name) == 0) {
            return xopt_apply(&xopts[i], opt, val);
        }
    }
    switch (options_compat(opt, val)) {
    case OPT_DONE:
        return true;
    case OPT_UNKNOWN:
        fprintf(stderr, "Illegal suboption \"%s\"\n", opt);
        return false;
    case OPT_BAD:
    default:
        return false;
    }
}

static bool extended_options(const char *arg)
{
    char *copy = strdup(arg);
    char *save = NULL, *tok;
    bool ok = true;

    if (copy == NULL) {
        return false;
    }
    for (tok = strtok_r(copy, ",", &save); tok != NULL && ok;
         tok = strtok_r(NULL, ",", &save)) {
        ok = extended_option(tok);
    }
    free(copy);
    return ok;
}

static const struct option long_opts[] = {
    {"port", required_argument, NULL, 'p'},
    {"udp-port", required_argument, NULL, 'U'},
    {"unix-socket", required_argument, NULL, 's'},
    {"unix-mask", required_argument, NULL, 'a'},
    {"enable-shutdown", no_argument, NULL, 'A'},
    {"listen", required_argument, NULL, 'l'},
    {"daemon", no_argument, NULL, 'd'},
    {"enable-coredumps", no_argument, NULL, 'r'},
    {"user", required_argument, NULL, 'u'},
    {"memory-limit", required_argument, NULL, 'm'},
    {"disable-evictions", no_argument, NULL, 'M'},
    {"conn-limit", required_argument, NULL, 'c'},
    {"lock-memory", no_argument, NULL, 'k'},
    {"verbose", optional_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"pidfile", required_argument, NULL, 'P'},
    {"slab-growth-factor", required_argument, NULL, 'f'},
    {"slab-min-size", required_argument, NULL, 'n'},
    {"threads", required_argument, NULL, 't'},
    {"max-reqs-per-event", required_argument, NULL, 'R'},
    {"disable-cas", no_argument, NULL, 'C'},
    {"listen-backlog", required_argument, NULL, 'b'},
    {"protocol", required_argument, NULL, 'B'},
    {"max-item-size", required_argument, NULL, 'I'},
    {"enable-sasl", no_argument, NULL, 'S'},
    {"auth-file", required_argument, NULL, 'Y'},
    {"disable-flush-all", no_argument, NULL, 'F'},
    {"disable-dumping", no_argument, NULL, 'X'},
    {"extended", required_argument, NULL, 'o'},
    {"peer", required_argument, NULL, 'x'},
    {"license", no_argument, NULL, 'i'},
    {"enable-largepages", no_argument, NULL, 'L'},
    {"disable-watch", no_argument, NULL, 'W'},
    {"napi-ids", required_argument, NULL, 'N'},
    {"enable-ssl", no_argument, NULL, 'Z'},
    {"memory-file", required_argument, NULL, 'e'},
    {NULL, 0, NULL, 0}
};

#define BAD(...) \
    do { \
        fprintf(stderr, __VA_ARGS__); \
        fputc('\n', stderr); \
        return -1; \
    } while (0)

/* As memcached: -U alone moves the TCP port there too; UDP has no
 * authentication, so it cannot be combined with -S or -Y. */
static int check_udp(bool tcp_given)
{
    if (settings.udpport == 0) {
        return 0;
    }
    if (!tcp_given) {
        settings.port = settings.udpport;
    }
    if (settings.sasl) {
        BAD("ERROR: Cannot enable UDP while using binary SASL "
            "authentication.");
    }
    if (settings.auth_file != NULL) {
        BAD("Cannot use UDP with ascii authentication enabled (-U 0 to "
            "disable)");
    }
    return 0;
}

/* Parsing state shared by the option groups below. */
struct parse_state {
    bool protocol_given;        /* -B seen */
    bool tcp_given;             /* -p seen */
};

/* The option groups return 0 (taken), -1 (bad, with a message), 1 (exit
 * 0 after -h, -V or -i) or OPT_NOT_MINE. */
#define OPT_NOT_MINE 2

/* Where and how clients connect: ports, sockets, listeners, limits. */
static int listen_option(int c, struct parse_state *st)
{
    switch (c) {
    case 'p':
        if (!parse_int(optarg, -1, 65535, &settings.port)) {
            BAD("ERROR: Invalid port number %s.", optarg);
        }
        st->tcp_given = true;
        break;
    case 'U':
        if (!parse_int(optarg, -1, 65535, &settings.udpport)) {
            BAD("Invalid UDP port: %s", optarg);
        }
        break;
    case 's':
        settings.socketpath = optarg;
        break;
    case 'a':
        settings.access = (int)strtol(optarg, NULL, 8);
        break;
    case 'A':
        settings.shutdown_command = true;
        break;
    case 'l':
        settings.inter = optarg;
        break;
    case 'd':
        settings.daemonize = true;
        break;
    case 'r':
        settings.maximize_core = true;
        break;
    case 'u':
        settings.username = optarg;
        break;
    case 'c':
        if (!parse_int(optarg, 1, INT32_MAX, &settings.maxconns)) {
            BAD("Maximum connections must be greater than 0");
        }
        break;
    case 'b':
        if (!parse_int(optarg, 1, INT32_MAX, &settings.backlog)) {
            BAD("Invalid backlog: %s", optarg);
        }
        break;
    case 'B':
        st->protocol_given = true;
        if (strcmp(optarg, "auto") == 0) {
            settings.binding_protocol = PROTO_AUTO;
        } else if (strcmp(optarg, "ascii") == 0) {
            settings.binding_protocol = PROTO_ASCII;
        } else if (strcmp(optarg, "binary") == 0) {
            settings.binding_protocol = PROTO_BINARY;
        } else {
            BAD("Invalid value for binding protocol: %s\n"
                " -- should be one of auto, binary, or ascii", optarg);
        }
        break;
    default:
        return OPT_NOT_MINE;
    }
    return 0;
}

/* Item memory: its size, slab classes, the memory file. */
static int memory_option(int c, struct parse_state *st)
{
    size_t sz;
    int mb;

    switch (c) {
    case 'm':
        if (!parse_int(optarg, 1, INT32_MAX, &mb)) {
            BAD("Invalid memory limit: %s", optarg);
        }
        settings.maxbytes = (size_t)mb * 1024 * 1024;
        break;
    case 'M':
        settings.evict_to_free = false;
        break;
    case 'k':
        settings.lock_memory = true;
        break;
    case 'I':
        if (!parse_size(optarg, &sz)) {
            BAD("Invalid item size: %s", optarg);
        }
        if (sz < 1024) {
            BAD("Item max size cannot be less than 1024 bytes.");
        }
        if (sz > 1024 * 1024 * 1024) {
            BAD("Cannot set item size limit higher than 1 gigabyte.");
        }
        settings.item_size_max = (int)sz;
        break;
    case 'f':
        settings.factor = atof(optarg);
        if (settings.factor <= 1.0) {
            BAD("Factor must be greater than 1");
        }
        break;
    case 'n':
        if (!parse_int(optarg, 1, 1024 * 1024, &settings.chunk_size)) {
            BAD("Chunk size must be greater than 0");
        }
        break;
    case 'L':
        settings.slab_hugepages = true;
        settings.prealloc = true;
        break;
    case 'e':
        settings.memory_file = optarg;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return 0;
}

/* Everything else: logging, threads, protocols, features, -o, -x. */
static int behaviour_option(int c, struct parse_state *st)
{
    switch (c) {
    case 'v':
        settings.verbose++;
        break;
    case 'h':
        usage();
        return 1;
    case 'V':
        printf("memcached %s\n", SERVER_VERSION);
        return 1;
    case 'i':
        license();
        return 1;
    case 'Z':
        settings.ssl.enabled = true;
        break;
    case 'W':
        settings.watch_enabled = false;
        break;
    case 'N':
        if (!parse_int(optarg, 1, INT32_MAX, &settings.num_napi_ids)) {
            BAD("Maximum number of NAPI IDs must be greater than 0");
        }
        break;
    case 'P':
        settings.pid_file = optarg;
        break;
    case 't':
        if (!parse_int(optarg, 1, 1024, &settings.num_threads)) {
            BAD("Number of threads must be greater than 0");
        }
        if (settings.num_threads > 64) {
            fprintf(stderr, "WARNING: Setting a high number of worker "
                            "threads is not recommended.\n");
        }
        break;
    case 'D':
        if (optarg[0] == '\0' || optarg[1] != '\0') {
            BAD("No delimiter specified");
        }
        settings.prefix_delimiter = optarg[0];
        settings.detail_enabled = true;
        break;
    case 'R':
        if (!parse_int(optarg, 1, INT32_MAX, &settings.reqs_per_event)) {
            BAD("Number of requests per event must be greater than 0");
        }
        break;
    case 'C':
        settings.use_cas = false;
        break;
    case 'S':
        settings.sasl = true;
        break;
    case 'Y':
        settings.auth_file = optarg;
        break;
    case 'F':
        settings.flush_enabled = false;
        break;
    case 'X':
        settings.dump_enabled = false;
        break;
    case 'o':
        if (!extended_options(optarg)) {
            return -1;
        }
        break;
    case 'x':
        settings.repl_peer = optarg;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return 0;
}

/* What one option alone cannot check: the protocol -S and -Y imply,
 * sizes against each other, ports against each other. */
static int check_combinations(struct parse_state *st)
{
    if (settings.sasl) {
        if (!st->protocol_given) {
            settings.binding_protocol = PROTO_BINARY;
        } else if (settings.binding_protocol != PROTO_BINARY) {
            BAD("ERROR: You cannot allow the ASCII protocol while using "
                "SASL.");
        }
        if (settings.sasl_pwdb == NULL) {
            settings.sasl_pwdb = getenv("MEMCACHED_SASL_PWDB");
        }
    }
    if (settings.auth_file != NULL) {
        if (!st->protocol_given) {
            settings.binding_protocol = PROTO_ASCII;
        } else if (settings.binding_protocol != PROTO_ASCII) {
            BAD("ERROR: You cannot allow the BINARY protocol while using "
                "ascii authentication tokens.");
        }
    }
    if ((size_t)settings.item_size_max > settings.maxbytes / 2) {
        BAD("Cannot set item size limit higher than 1/2 of memory max.");
    }
    if (settings.slab_chunk_size_max > settings.item_size_max) {
        settings.slab_chunk_size_max = settings.item_size_max;
    }
    if (!options_compat_finish()) {
        return -1;
    }
    /* Checked now, not when the client port opens after the start-up
     * gate (up to repl_initial_sync_timeout later). */
    if (settings.repl_peer != NULL && settings.socketpath == NULL &&
        settings.port != 0 && settings.repl_port == settings.port) {
        BAD("repl_port %d is also the client port (-p %d): give the "
            "replication port its own number", settings.repl_port,
            settings.port);
    }
    return check_udp(st->tcp_given);
}

/* Fill settings from argv.  Returns 0, 1 (exit 0: -h/-V) or -1. */
int options_parse(int argc, char **argv)
{
    struct parse_state st = { false, false };
    int c, r;

    while ((c = getopt_long(argc, argv,
                            "p:U:s:a:Al:dru:m:Mc:kvhiVP:f:n:t:D:R:Cb:B:I:SY:FXo:x:ZLWe:N:",
                            long_opts, NULL)) != -1) {
        r = listen_option(c, &st);
        if (r == OPT_NOT_MINE) {
            r = memory_option(c, &st);
        }
        if (r == OPT_NOT_MINE) {
            r = behaviour_option(c, &st);
        }
        if (r == OPT_NOT_MINE) {
            fprintf(stderr, "Try `%s -h' for more information.\n", argv[0]);
            return -1;
        }
        if (r != 0) {
            return r;
        }
    }
    if (optind < argc) {
        BAD("Unexpected argument: %s", argv[optind]);
    }
    return check_combinations(&st);
}
