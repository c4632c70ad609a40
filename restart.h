/*
 * restart.h - the memory file (-e FILE): every live item, tombstone and
 * the clocks written on a clean stop, read back at the next start, so a
 * restarted node serves its data at once.  Other modules (replication)
 * add a section of their own.  doc/restart.txt.
 */
#ifndef RESTART_H
#define RESTART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* What the last start made of the memory file (stats, logs). */
enum restart_outcome {
    RESTART_OFF,                /* no -e */
    RESTART_COLD,               /* no usable file: started empty */
    RESTART_WARM                /* items restored from the file */
};
const char *restart_outcome_name(enum restart_outcome o);

/* Sections after the header; each is <tag u32> <length u64> <bytes>. */
enum restart_section {
    RESTART_SEC_ITEMS = 1,      /* item and tombstone records */
    RESTART_SEC_REPL = 2        /* replication's state (repl_persist.c) */
};

/* The fixed header at the start of FILE, native byte order (the endian
 * field tells another machine's file).  Checked before anything else is
 * read; body_sum covers every byte after it. */
#define RESTART_MAGIC "PCMEMFIL"
#define RESTART_FORMAT 1
struct restart_header {
    char magic[8];              /* RESTART_MAGIC */
    uint32_t format;            /* RESTART_FORMAT */
    uint32_t header_size;       /* sizeof(struct restart_header) */
    uint32_t endian;            /* 0x01020304 as written */
    uint32_t item_size_max;     /* -I of the node that wrote it */
    uint64_t body_bytes;        /* bytes after the header */
    uint64_t body_sum;          /* restart_sum() of those bytes */
    uint64_t items;             /* item records */
    uint64_t tombstones;        /* tombstone records */
    uint64_t saved_at;          /* unix time of the save */
    uint64_t clock;             /* a version above every one issued */
    uint64_t flush_cutoff;      /* flush_all cutoff version, 0: none */
    uint32_t flush_at;          /* ... and when it applies */
    uint32_t hashpower;         /* hash table size, log2 */
    uint64_t header_sum;        /* restart_sum() of the header, this 0 */
};

/* A 64-bit checksum (not cryptographic): corruption, truncation.  Sums
 * of consecutive pieces chain (seed = the previous sum) as long as every
 * piece but the last is a multiple of 8 bytes. */
uint64_t restart_sum(const void *p, size_t n, uint64_t seed);

/* Check a header read from a file of file_size bytes against this
 * node's -I: NULL if usable, else why not (for the log). */
const char *restart_check_header(const struct restart_header *h,
                                 uint64_t file_size, uint32_t item_size_max);

/* Walk the sections of a body: calls fn for each; NULL if they tile the
 * body exactly, else why not. */
typedef const char *(*restart_section_fn)(uint32_t tag, const char *p,
                                          uint64_t n, void *arg);
const char *restart_walk_sections(const char *body, uint64_t n,
                                  restart_section_fn fn, void *arg);

/* One item record of the ITEMS section, parsed in place. */
struct restart_rec {
    bool tombstone;             /* a tombstone (no value) */
    bool key_binary;            /* key was given base64 */
    uint32_t flags;             /* client flags */
    uint32_t exptime;           /* absolute deadline */
    uint64_t version;           /* its version */
    const char *key;            /* nkey bytes */
    uint8_t nkey;
    const char *value;          /* vlen bytes, without "\r\n" */
    uint32_t vlen;
};
/* Parse the record at *p (n bytes left): 1 and advances *p, 0 at the end
 * of the section, -1 with *why when it is malformed or would not fit an
 * item of item_size_max. */
int restart_next_rec(const char **p, const char *end, uint32_t item_size_max,
                     struct restart_rec *r, const char **why);

/* --- the process's memory file (memcached.c) ------------------------- */

/* Before storage: read FILE.meta (and remove it: a file is used once),
 * then FILE's header and checksum.  -1 only for a marker that is not
 * ours (memcached refuses to start then too); a file that cannot be used
 * is logged and the node starts cold.  *hashpower gets the saved table
 * size (0: none). */
int restart_open(const char *path, unsigned *hashpower);
/* After storage (and repl_configure): restore the items. */
void restart_load(void);
/* The saved section `tag` of the file opened, or NULL (until
 * restart_release()). */
const char *restart_section_data(uint32_t tag, uint64_t *n);
/* Unmap the file once every module has read its part. */
void restart_release(void);
/* Adds a section to the next save. */
typedef bool (*restart_save_fn)(struct rbuf *out);
void restart_add_section(uint32_t tag, restart_save_fn fn);
/* After every thread stopped: write FILE, then FILE.meta.  0 or -1. */
int restart_save(const char *path);

enum restart_outcome restart_outcome(void);
/* Why the last start was cold ("" when warm or off). */
const char *restart_why(void);
uint64_t restart_items_loaded(void);
uint64_t restart_load_ms(void);
/* util_mono_us() when restart_open ran (0: no -e): the process's start. */
uint64_t restart_open_us(void);

#endif
