/*
 * options_compat.c - memcached 1.6.18's -o sub-options that options.c
 * does not handle itself: what the segmented LRU, seccomp, extstore and
 * client-port TLS take, and the slab and hash knobs added for them.
 * options.c owns the command line and calls in here for the rest.
 */
#include "options_compat.h"
#include "hash.h"
#include "settings.h"
#include "slabs.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- memcached's other sub-options -----------------------------------------
 * A configuration written for memcached 1.6.18 must start here too.  Each
 * of its -o options below either does what it does there (no_hashexpand,
 * slab_automove_window, slab_sizes, no_chunked_items, no_modern, the
 * segmented LRU's lru_maintainer, no_lru_maintainer and temporary_ttl)
 * or parses with no effect for a feature this server lacks (seccomp,
 * extstore tuning), as -h and doc/protocol.txt say; what
 * memcached shows in stats settings is shown under the same name.  The one
 * switch that would turn on a missing feature, ext_path, is refused: a
 * server started without its disk tier would mislead.
 */
static bool chunk_max_given;    /* -o slab_chunk_max seen (for no_modern) */
static size_t slab_sizes[SLABS_MAX_CLASSES];    /* -o slab_sizes */
static unsigned nslab_sizes;

void options_compat_chunk_max_given(void)
{
    chunk_max_given = true;
}

static bool int_in(const char *s, int min, int max, int *out)
{
    int32_t v;

    if (!safe_strtol(s, &v) || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static bool has_val(const char *opt, const char *val)
{
    if (val == NULL) {
        fprintf(stderr, "Missing value for -o %s\n", opt);
        return false;
    }
    return true;
}

/* A whole number min..max in val; a message naming opt otherwise. */
static bool num_val(const char *opt, const char *val, int min, int max,
                    int *out)
{
    if (val == NULL || !int_in(val, min, max, out)) {
        fprintf(stderr, "-o %s takes a number (%d..%d)\n", opt, min, max);
        return false;
    }
    return true;
}

static bool is_any(const char *opt, const char *const *names)
{
    for (; *names != NULL; names++) {
        if (strcmp(opt, *names) == 0) {
            return true;
        }
    }
    return false;
}

/* "96-192-384": rising chunk sizes; checked against -n and slab_chunk_max
 * once all options are read (check_slab_sizes). */
static bool parse_slab_sizes(const char *val)
{
    char *copy = strdup(val);
    char *save = NULL, *tok;
    uint64_t v;

    if (copy == NULL) {
        return false;
    }
    nslab_sizes = 0;
    for (tok = strtok_r(copy, "-", &save); tok != NULL;
         tok = strtok_r(NULL, "-", &save)) {
        if (!safe_strtoull(tok, &v) || v == 0 || v > 1024 * 1024 * 1024 ||
            nslab_sizes >= SLABS_MAX_CLASSES - 3) {
            fprintf(stderr, "slab_sizes: bad size or too many classes: "
                            "%s\n", tok);
            free(copy);
            return false;
        }
        slab_sizes[nslab_sizes++] = (size_t)v;
    }
    free(copy);
    if (nslab_sizes == 0) {
        fprintf(stderr, "slab_sizes takes sizes separated by '-'\n");
        return false;
    }
    return true;
}

bool options_compat_finish(void)
{
    size_t last = 0;
    unsigned i;

    for (i = 0; i < nslab_sizes; i++) {
        size_t v = slab_sizes[i];
        if (v < (size_t)settings.chunk_size ||
            v > (size_t)settings.slab_chunk_size_max) {
            fprintf(stderr, "slab_sizes: size %zu is out of valid range\n",
                    v);
            return false;
        }
        if (v <= last + 8) {
            fprintf(stderr, "slab_sizes: size %zu must be more than 8 "
                            "bytes above the one before it\n", v);
            return false;
        }
        last = v;
    }
    return slabs_set_sizes(slab_sizes, nslab_sizes) == 0;
}

/* memcached 1.4's defaults (-o no_modern). */
static void old_defaults(void)
{
    if (!chunk_max_given) {
        settings.slab_chunk_size_max = settings.slab_page_size;
    }
    settings.slab_reassign = false;
    settings.slab_automove = 0;
    settings.maxconns_fast = false;
    settings.lru_crawler = false;
    settings.lru_segmented = false;
    settings.lru_maintainer = false;
    (void)hash_init("jenkins");
    settings.hash_algorithm_name = "jenkins";
}

static enum opt_result slab_option(const char *opt, const char *val)
{
    double f;
    int n;

    if (strcmp(opt, "slab_automove_window") == 0) {
        if (!has_val(opt, val)) {
            return OPT_BAD;
        }
        if (!int_in(val, 3, 86400, &n)) {
            fprintf(stderr, "slab_automove_window must be > 2\n");
            return OPT_BAD;
        }
        settings.slab_automove_window = n;
    } else if (strcmp(opt, "slab_automove_ratio") == 0 ||
               strcmp(opt, "slab_automove_freeratio") == 0) {
        if (!has_val(opt, val)) {
            return OPT_BAD;
        }
        if (!safe_strtod(val, &f) || f <= 0 || f > 1) {
            fprintf(stderr, "%s must be > 0 and < 1\n", opt);
            return OPT_BAD;
        }
        *(strcmp(opt, "slab_automove_ratio") == 0
              ? &settings.slab_automove_ratio
              : &settings.slab_automove_freeratio) = f;
    } else if (strcmp(opt, "no_slab_automove") == 0) {
        settings.slab_automove = 0;
    } else if (strcmp(opt, "slab_sizes") == 0) {
        if (!has_val(opt, val) || !parse_slab_sizes(val)) {
            return OPT_BAD;
        }
        settings.slab_sizes = strdup(val);
    } else if (strcmp(opt, "no_chunked_items") == 0) {
        settings.slab_chunk_size_max = settings.slab_page_size;
        chunk_max_given = true;
    } else if (strcmp(opt, "no_hashexpand") == 0) {
        settings.hash_expand = false;
    } else {
        return OPT_UNKNOWN;
    }
    return OPT_DONE;
}

/* ssl_*: parsed as memcached parses them; they configure the client-port
 * TLS of -Z (tls.c) and are shown in stats settings, -Z or not. */
static enum opt_result tls_option(const char *opt, const char *val)
{
    static const int verify_flags[] = {0, 1, 3, 7};
    int n;

    if (strcmp(opt, "ssl_session_cache") == 0) {
        settings.ssl.session_cache = true;
        return OPT_DONE;
    }
    if (strcmp(opt, "ssl_kernel_tls") == 0) {
        settings.ssl.kernel_tls = true;
        return OPT_DONE;
    }
    if (strncmp(opt, "ssl_", 4) != 0) {
        return OPT_UNKNOWN;
    }
    if (!has_val(opt, val)) {
        return OPT_BAD;
    }
    if (strcmp(opt, "ssl_chain_cert") == 0) {
        settings.ssl.chain_cert = strdup(val);
    } else if (strcmp(opt, "ssl_key") == 0) {
        settings.ssl.key = strdup(val);
    } else if (strcmp(opt, "ssl_ciphers") == 0) {
        settings.ssl.ciphers = strdup(val);
    } else if (strcmp(opt, "ssl_ca_cert") == 0) {
        settings.ssl.ca_cert = strdup(val);
    } else if (strcmp(opt, "ssl_verify_mode") == 0) {
        if (!int_in(val, 0, 3, &n)) {
            fprintf(stderr, "Invalid ssl_verify_mode. Use help to see "
                            "valid options.\n");
            return OPT_BAD;
        }
        settings.ssl.verify_mode = verify_flags[n];
    } else if (strcmp(opt, "ssl_keyformat") == 0) {
        if (!int_in(val, 0, INT32_MAX, &settings.ssl.keyformat)) {
            fprintf(stderr, "could not parse argument to ssl_keyformat\n");
            return OPT_BAD;
        }
    } else if (strcmp(opt, "ssl_wbuf_size") == 0) {
        if (!int_in(val, 0, 1024 * 1024, &n)) {
            fprintf(stderr, "could not parse argument to ssl_wbuf_size\n");
            return OPT_BAD;
        }
        settings.ssl.wbuf_size = (unsigned)n * 1024;
    } else if (strcmp(opt, "ssl_min_version") == 0) {
        if (!int_in(val, 0, 3, &settings.ssl.min_version)) {
            fprintf(stderr, "Invalid ssl_min_version. Use help to see "
                            "valid options.\n");
            return OPT_BAD;
        }
    } else {
        return OPT_UNKNOWN;
    }
    return OPT_DONE;
}

/* Segmented LRU, seccomp, extstore tuning and the rest. */
enum opt_result options_compat(const char *opt, const char *val)
{
    static const char *const no_effect[] = {
        "drop_privileges",
        "no_drop_privileges", "inline_ascii_resp", "no_inline_ascii_resp",
        "track_sizes", "modern", NULL
    };
    enum opt_result r;
    int n;

    if ((r = slab_option(opt, val)) != OPT_UNKNOWN ||
        (r = tls_option(opt, val)) != OPT_UNKNOWN) {
        return r;
    }
    if (is_any(opt, no_effect)) {
        return OPT_DONE;
    }
    if (strcmp(opt, "no_modern") == 0) {
        old_defaults();
    } else if (strcmp(opt, "lru_maintainer") == 0) {
        settings.lru_maintainer = true;
        settings.lru_segmented = true;
    } else if (strcmp(opt, "no_lru_maintainer") == 0) {
        settings.lru_maintainer = false;
        settings.lru_segmented = false;
    } else if (strcmp(opt, "tail_repair_time") == 0) {
        if (!num_val(opt, val, 0, INT32_MAX, &n)) {
            return OPT_BAD;
        }
        if (n < 10) {
            fprintf(stderr, "Cannot set tail_repair_time to less than 10 "
                            "seconds\n");
            return OPT_BAD;
        }
        settings.tail_repair_time = n;
    } else if (strcmp(opt, "temporary_ttl") == 0) {
        if (!num_val(opt, val, 0, INT32_MAX, &settings.temporary_ttl)) {
            return OPT_BAD;
        }
        settings.temp_lru = true;
    } else if (strcmp(opt, "read_buf_mem_limit") == 0) {
        if (!num_val(opt, val, 0, 4095, &n)) {  /* megabytes */
            return OPT_BAD;
        }
        settings.read_buf_mem_limit = (unsigned)n * 1024 * 1024;
    } else if (strcmp(opt, "resp_obj_mem_limit") == 0) {
        fprintf(stderr, "DEPRECATED: resp_obj_mem_limit no longer used. "
                        "See read_buf_mem_limit,\n");
    } else if (strcmp(opt, "sock_cookie_id") == 0) {
        if (!num_val(opt, val, 0, INT32_MAX, &n)) {
            return OPT_BAD;
        }
    } else if (strcmp(opt, "ext_path") == 0) {
        fprintf(stderr, "extstore (-o ext_path) is not supported: items "
                        "are kept in memory only\n");
        return OPT_BAD;
    } else if (strncmp(opt, "ext_", 4) == 0) {
        /* extstore tuning: nothing to tune without ext_path */
    } else {
        return OPT_UNKNOWN;
    }
    return OPT_DONE;
}
