/*
 * fuzz_restart.c - the memory file (-e) under libFuzzer: each input is a
 * file's body (the sections after the header).  The harness seals it
 * with a header and a marker whose sizes and checksums match, so that
 * inputs get past the checksums into the section, item record and
 * replication section parsers, then restores it into fresh storage with
 * restart_open() and restart_load(), as a start does, and replays the
 * replication section through persist_check().  Half of the inputs
 * (the first byte's low bit) also go through unsealed, raw, as a whole
 * file: the checks of the header itself.  restart.c is compiled into
 * this file (and left out of the link) so that its log lines are off.
 */
#include "log.h"
/* A refused or restored file logs a line: millions of them. */
#undef log_warn
#define log_warn(...) ((void)0)

#include "restart.c"

#include "fuzz/fuzz_storage.h"
#include "item_locks.h"
#include "repl_persist.h"
#include "restart.h"
#include "settings.h"
#include "thread.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void write_file(const char *name, const void *p, size_t n)
{
    FILE *f = fopen(name, "w");

    if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        abort();
    }
}

static void seal_marker(uint64_t bytes, uint64_t sum)
{
    char meta[80], text[160];
    int n;

    snprintf(meta, sizeof(meta), "%s.meta", path);
    n = snprintf(text, sizeof(text), "paircached memory file\nformat 1\n"
                 "bytes %llu\nsum %016llx\n", (unsigned long long)bytes,
                 (unsigned long long)sum);
    write_file(meta, text, (size_t)n);
}

/* One start from the file as it is on disk. */
static void start_from_file(void)
{
    unsigned hp = 0;

    fuzz_storage_reset(1);
    if (restart_open(path, &hp) == 0) {
        restart_load();
    }
    restart_release();
}

static void remove_files(void)
{
    char meta[80];

    snprintf(meta, sizeof(meta), "%s.meta", path);
    unlink(path);
    unlink(meta);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    settings_init();
    settings.maxbytes = 16 * 1024 * 1024;
    settings.item_size_max = 64 * 1024;
    settings.memory_file = path;
    settings.repl_peer = "127.0.0.1:11212";
    settings.repl_tombstone_ttl = 3600;
    snprintf(path, sizeof(path), "%s/fuzz-restart-%d.mem",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
             (int)getpid());
    atexit(remove_files);
    if (item_locks_init(FUZZ_HASHPOWER) != 0) {
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct restart_header h;
    char *file;

    if (size > 0 && (data[size - 1] & 1)) {
        /* raw: the whole input is the file */
        uint64_t sum = 0;
        if (size >= sizeof(h)) {
            memcpy(&h, data, sizeof(h));
            sum = h.header_sum;
        }
        write_file(path, data, size);
        seal_marker(size, sum);
        start_from_file();
        return 0;
    }
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, RESTART_MAGIC, 8);
    h.format = RESTART_FORMAT;
    h.header_size = sizeof(h);
    h.endian = 0x01020304u;
    h.item_size_max = (uint32_t)settings.item_size_max;
    h.body_bytes = size;
    h.body_sum = restart_sum(data, size, 0);
    h.saved_at = (uint64_t)time(NULL);
    h.hashpower = 12;
    /* items and tombstones: counted by the parser, so that a body with
     * well-formed records also passes the count check */
    {
        const char *p = (const char *)data;
        uint64_t off = 0;
        while (size - off >= 12) {
            uint32_t tag;
            uint64_t len;
            memcpy(&tag, p + off, 4);
            memcpy(&len, p + off + 4, 8);
            off += 12;
            if (len > size - off) {
                break;
            }
            if (tag == RESTART_SEC_ITEMS) {
                const char *q = p + off, *qe = q + len, *why;
                struct restart_rec r;
                while (restart_next_rec(&q, qe, h.item_size_max, &r,
                                        &why) == 1) {
                    if (r.tombstone) {
                        h.tombstones++;
                    } else {
                        h.items++;
                    }
                }
            } else if (tag == RESTART_SEC_REPL) {
                (void)persist_check(p + off, len, 0);
            }
            off += len;
        }
    }
    h.header_sum = restart_sum(&h, sizeof(h), 0);
    file = malloc(sizeof(h) + size);
    if (file == NULL) {
        abort();
    }
    memcpy(file, &h, sizeof(h));
    if (size > 0) {
        memcpy(file + sizeof(h), data, size);
    }
    write_file(path, file, sizeof(h) + size);
    free(file);
    seal_marker(sizeof(h) + size, h.header_sum);
    start_from_file();
    return 0;
}
