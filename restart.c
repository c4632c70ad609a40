/*
 * restart.c - the memory file (-e FILE): written on a clean stop, read
 * back at the next start.  Owns the file format, its checks and the
 * items section; what replication keeps is a section it fills itself
 * (repl_persist.c).  The file is hostile input: every length is checked
 * before it is used, and a file that does not check out starts us cold.
 */
#include "restart.h"
#include "assoc.h"
#include "hash.h"
#include "item_chunk.h"
#include "items.h"
#include "items_apply.h"
#include "log.h"
#include "memcached.h"
#include "repl_persist.h"
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENDIAN_MARK 0x01020304u
#define REC_HDR 24                  /* fixed part of an item record */
#define REC_ITEM 1
#define REC_TOMBSTONE 2
#define REC_KEY_BINARY 0x01
#define WBUF_SIZE (1024 * 1024)     /* a multiple of 8: sums chain */
#define MARKER_LINE "paircached memory file"
#define MAX_SECTIONS 4

/* --- the format: pure functions (t/check_restart.c) ---------------------- */

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

uint64_t restart_sum(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = seed;
    uint64_t w;

    while (n >= 8) {
        memcpy(&w, b, 8);
        h = rotl(h ^ w, 29) * 0x9e3779b97f4a7c15ULL;
        b += 8;
        n -= 8;
    }
    while (n > 0) {
        h = rotl(h ^ *b, 7) * 0xff51afd7ed558ccdULL;
        b++;
        n--;
    }
    return h;                   /* no finishing step: sums chain */
}

const char *restart_check_header(const struct restart_header *h,
                                 uint64_t file_size, uint32_t item_size_max)
{
    struct restart_header c;

    if (file_size < sizeof(*h)) {
        return "shorter than its header";
    }
    if (memcmp(h->magic, RESTART_MAGIC, 8) != 0) {
        return "not a paircached memory file";
    }
    if (h->endian != ENDIAN_MARK) {
        return "written on a machine of another byte order";
    }
    if (h->format != RESTART_FORMAT) {
        return "written by another version (format) of paircached";
    }
    if (h->header_size != sizeof(*h)) {
        return "header of another size";
    }
    c = *h;
    c.header_sum = 0;
    if (restart_sum(&c, sizeof(c), 0) != h->header_sum) {
        return "header checksum mismatch";
    }
    if (h->body_bytes != file_size - sizeof(*h)) {
        return "truncated or extended since it was written";
    }
    if (h->item_size_max != item_size_max) {
        return "written with another item size max (-I)";
    }
    if (h->hashpower > 32) {
        return "hash power out of range";
    }
    return NULL;
}

const char *restart_walk_sections(const char *body, uint64_t n,
                                  restart_section_fn fn, void *arg)
{
    uint64_t off = 0, len;
    uint32_t tag;
    const char *why;

    while (off < n) {
        if (n - off < 12) {
            return "a section header is cut short";
        }
        memcpy(&tag, body + off, 4);
        memcpy(&len, body + off + 4, 8);
        off += 12;
        if (len > n - off) {
            return "a section runs past the end";
        }
        why = fn(tag, body + off, len, arg);
        if (why != NULL) {
            return why;
        }
        off += len;
    }
    return NULL;
}

int restart_next_rec(const char **p, const char *end, uint32_t item_size_max,
                     struct restart_rec *r, const char **why)
{
    const unsigned char *b = (const unsigned char *)*p;
    size_t left = (size_t)(end - *p);

    if (left == 0) {
        return 0;
    }
    if (left < REC_HDR) {
        *why = "an item record is cut short";
        return -1;
    }
    if ((b[0] != REC_ITEM && b[0] != REC_TOMBSTONE) || b[3] != 0 ||
        (b[2] & ~REC_KEY_BINARY) != 0) {
        *why = "an item record of unknown type";
        return -1;
    }
    r->tombstone = b[0] == REC_TOMBSTONE;
    r->nkey = b[1];
    r->key_binary = (b[2] & REC_KEY_BINARY) != 0;
    memcpy(&r->flags, b + 4, 4);
    memcpy(&r->exptime, b + 8, 4);
    memcpy(&r->vlen, b + 12, 4);
    memcpy(&r->version, b + 16, 8);
    if (r->nkey == 0 || r->nkey > KEY_MAX_LENGTH) {
        *why = "an item record with a bad key length";
        return -1;
    }
    if ((uint64_t)r->vlen + 2 > item_size_max ||
        (r->tombstone && r->vlen != 0)) {
        *why = "an item record with a bad value length";
        return -1;
    }
    if ((uint64_t)REC_HDR + r->nkey + r->vlen > left) {
        *why = "an item record runs past its section";
        return -1;
    }
    r->key = *p + REC_HDR;
    r->value = r->key + r->nkey;
    *p = r->value + r->vlen;
    return 1;
}

/* --- writing ------------------------------------------------------------- */

/* Body bytes go through one buffer, summed a whole buffer at a time. */
struct writer {
    int fd;                     /* FILE, open for writing */
    char *buf;                  /* WBUF_SIZE bytes not yet written */
    size_t len;                 /* bytes used in buf */
    uint64_t sum;               /* restart_sum() of what was written */
    uint64_t total;             /* body bytes written */
    bool failed;                /* a write failed: the save fails */
};

static void w_flush(struct writer *w)
{
    size_t off = 0;
    ssize_t n;

    if (w->failed || w->len == 0) {
        return;
    }
    w->sum = restart_sum(w->buf, w->len, w->sum);
    while (off < w->len) {
        n = write(w->fd, w->buf + off, w->len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            w->failed = true;
            return;
        }
        off += (size_t)n;
    }
    w->total += w->len;
    w->len = 0;
}

static void w_add(struct writer *w, const void *p, size_t n)
{
    const char *s = p;
    size_t k;

    while (n > 0 && !w->failed) {
        k = WBUF_SIZE - w->len;
        k = k < n ? k : n;
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
        if (w->len == WBUF_SIZE) {
            w_flush(w);
        }
    }
}

static void w_section(struct writer *w, uint32_t tag, uint64_t len)
{
    w_add(w, &tag, 4);
    w_add(w, &len, 8);
}

/* Counting, then writing, the items section: nothing runs meanwhile. */
struct items_pass {
    struct writer *w;           /* NULL: only count */
    uint64_t bytes;             /* the section's length */
    uint64_t items;             /* item records */
    uint64_t tombstones;        /* tombstone records */
};

/* One chunk of a chunked value into the file. */
static bool w_piece(void *arg, const char *p, size_t n)
{
    w_add(arg, p, n);
    return true;
}

static bool save_item_cb(struct item *it, void *arg)
{
    struct items_pass *ps = arg;
    unsigned char hdr[REC_HDR];
    bool tomb = (it->it_flags & ITEM_TOMBSTONE) != 0;
    uint32_t vlen = tomb ? 0 : it->nbytes - 2;

    if (item_is_dead(it)) {
        return true;
    }
    ps->bytes += REC_HDR + it->nkey + vlen;
    if (tomb) {
        ps->tombstones++;
    } else {
        ps->items++;
    }
    if (ps->w == NULL) {
        return true;
    }
    memset(hdr, 0, sizeof(hdr));
    hdr[0] = tomb ? REC_TOMBSTONE : REC_ITEM;
    hdr[1] = it->nkey;
    hdr[2] = (it->it_flags & ITEM_KEY_BINARY) ? REC_KEY_BINARY : 0;
    memcpy(hdr + 4, &it->flags, 4);
    memcpy(hdr + 8, &it->exptime, 4);
    memcpy(hdr + 12, &vlen, 4);
    memcpy(hdr + 16, &it->version, 8);
    w_add(ps->w, hdr, sizeof(hdr));
    w_add(ps->w, ITEM_key(it), it->nkey);
    item_value_pieces(it, vlen, w_piece, ps->w);
    return !ps->w->failed;
}

static struct {
    uint32_t tag;               /* enum restart_section */
    restart_save_fn fn;         /* fills it at the save */
} sections[MAX_SECTIONS];       /* other modules' sections */
static unsigned nsections;      /* entries used */

void restart_add_section(uint32_t tag, restart_save_fn fn)
{
    if (nsections < MAX_SECTIONS) {
        sections[nsections].tag = tag;
        sections[nsections].fn = fn;
        nsections++;
    }
}

/* The other modules' sections, then the items. */
static int write_body(struct writer *w, struct restart_header *h)
{
    struct items_pass ps = {NULL, 0, 0, 0};
    struct rbuf b = {NULL, 0, 0};
    unsigned i;

    for (i = 0; i < nsections; i++) {
        b.len = 0;
        if (!sections[i].fn(&b)) {
            rbuf_free(&b);
            return -1;
        }
        w_section(w, sections[i].tag, b.len);
        w_add(w, b.data, b.len);
    }
    rbuf_free(&b);
    assoc_walk(save_item_cb, &ps);
    w_section(w, RESTART_SEC_ITEMS, ps.bytes);
    h->items = ps.items;
    h->tombstones = ps.tombstones;
    ps.w = w;
    ps.bytes = ps.items = ps.tombstones = 0;
    assoc_walk(save_item_cb, &ps);
    if (ps.items != h->items || ps.tombstones != h->tombstones) {
        return -1;              /* cannot happen: nothing runs */
    }
    w_flush(w);
    return w->failed ? -1 : 0;
}

static char *meta_path(const char *path, const char *ext)
{
    size_t n = strlen(path) + strlen(ext) + 1;
    char *m = malloc(n);

    if (m != NULL) {
        snprintf(m, n, "%s%s", path, ext);
    }
    return m;
}

/* FILE.meta is written last, through a rename: a stop cut short leaves
 * no marker, and the next start is cold. */
static int write_marker(const char *path, const struct restart_header *h)
{
    char *tmp = meta_path(path, ".meta.tmp"), *meta = meta_path(path, ".meta");
    FILE *f = tmp != NULL ? fopen(tmp, "w") : NULL;
    int rc = -1;

    if (f == NULL || meta == NULL) {
        goto out;
    }
    fprintf(f, "%s\nformat %u\nbytes %llu\nsum %016llx\n", MARKER_LINE,
            RESTART_FORMAT,
            (unsigned long long)(h->body_bytes + sizeof(*h)),
            (unsigned long long)h->header_sum);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto out;
    }
    f = NULL;
    rc = rename(tmp, meta);
out:
    if (f != NULL) {
        fclose(f);
    }
    free(tmp);
    free(meta);
    return rc;
}

int restart_save(const char *path)
{
    struct restart_header h;
    struct writer w = {-1, NULL, 0, 0, 0, false};
    uint64_t t0 = util_mono_us();
    char *meta = meta_path(path, ".meta");
    int rc = -1;

    if (meta != NULL) {
        unlink(meta);
        free(meta);
    }
    memset(&h, 0, sizeof(h));
    w.buf = malloc(WBUF_SIZE);
    w.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w.buf == NULL || w.fd < 0 ||
        lseek(w.fd, (off_t)sizeof(h), SEEK_SET) < 0 ||
        write_body(&w, &h) != 0) {
        goto out;
    }
    memcpy(h.magic, RESTART_MAGIC, 8);
    h.format = RESTART_FORMAT;
    h.header_size = sizeof(h);
    h.endian = ENDIAN_MARK;
    h.item_size_max = (uint32_t)settings.item_size_max;
    h.body_bytes = w.total;
    h.body_sum = w.sum;
    h.saved_at = (uint64_t)time(NULL);
    h.clock = item_next_version();
    items_flush_state(&h.flush_cutoff, &h.flush_at);
    h.hashpower = assoc_hashpower();
    h.header_sum = restart_sum(&h, sizeof(h), 0);
    if (pwrite(w.fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        fdatasync(w.fd) != 0) {
        goto out;
    }
    rc = write_marker(path, &h);
out:
    if (rc != 0) {
        log_warn("memory file %s: cannot save it (%s); the next start will "
                 "be cold", path, strerror(errno ? errno : EIO));
    } else {
        log_warn("memory file %s: saved %llu items, %llu tombstones, "
                 "%llu bytes in %llu ms", path,
                 (unsigned long long)h.items,
                 (unsigned long long)h.tombstones,
                 (unsigned long long)(h.body_bytes + sizeof(h)),
                 (unsigned long long)((util_mono_us() - t0) / 1000));
    }
    if (w.fd >= 0) {
        close(w.fd);
    }
    free(w.buf);
    return rc;
}

/* --- reading --------------------------------------------------------------- */

static struct {
    enum restart_outcome outcome;   /* what the start made of the file */
    char why[160];              /* why it was cold */
    const char *map;            /* the file, mapped, while loading */
    size_t map_len;             /* its size */
    struct restart_header h;    /* its header, copied out */
    uint64_t loaded;            /* items and tombstones restored */
    uint64_t load_ms;
    uint64_t open_us;           /* when restart_open ran (process start) */
} st;

const char *restart_outcome_name(enum restart_outcome o)
{
    switch (o) {
    case RESTART_OFF:
        return "off";
    case RESTART_COLD:
        return "cold";
    case RESTART_WARM:
        return "warm";
    }
    return "?";
}

static void go_cold(const char *path, const char *why)
{
    st.outcome = RESTART_COLD;
    snprintf(st.why, sizeof(st.why), "%s", why);
    log_warn("memory file %s: %s; starting with an empty cache", path, why);
    if (st.map != NULL) {
        munmap((void *)st.map, st.map_len);
        st.map = NULL;
    }
}

/* The marker: -1 when it is not ours, 0 when it names a file (*bytes,
 * *sum), 1 when it is ours but unreadable. */
static int read_marker(const char *meta, uint64_t *bytes, uint64_t *sum)
{
    char buf[256];
    FILE *f = fopen(meta, "r");
    size_t n;
    unsigned fmt;
    unsigned long long b, s;

    if (f == NULL) {
        return 1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (strncmp(buf, MARKER_LINE "\n", strlen(MARKER_LINE) + 1) != 0) {
        return -1;
    }
    if (sscanf(buf + strlen(MARKER_LINE) + 1,
               "format %u\nbytes %llu\nsum %llx\n", &fmt, &b, &s) != 3 ||
        fmt != RESTART_FORMAT) {
        return 2;
    }
    *bytes = b;
    *sum = s;
    return 0;
}

/* Map FILE and check everything that can be checked without storage. */
static const char *map_file(const char *path, uint64_t bytes, uint64_t sum)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    const char *why;
    void *m;

    if (fd < 0) {
        return "the marker is there but the file is not";
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return "not a regular file";
    }
    if ((uint64_t)sb.st_size != bytes) {
        close(fd);
        return "its size is not the one its marker recorded (truncated?)";
    }
    if (sb.st_size < (off_t)sizeof(struct restart_header)) {
        close(fd);
        return "shorter than its header";
    }
    m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        return "cannot map it";
    }
    st.map = m;
    st.map_len = (size_t)sb.st_size;
    memcpy(&st.h, st.map, sizeof(st.h));
    why = restart_check_header(&st.h, (uint64_t)sb.st_size,
                               (uint32_t)settings.item_size_max);
    if (why != NULL) {
        return why;
    }
    if (st.h.header_sum != sum) {
        return "its marker belongs to another save";
    }
    if (restart_sum(st.map + sizeof(st.h), st.h.body_bytes, 0) !=
        st.h.body_sum) {
        return "checksum mismatch (corrupt)";
    }
    return NULL;
}

/* Sections must be well formed before any item is restored. */
static const char *check_section(uint32_t tag, const char *p, uint64_t n,
                                 void *arg)
{
    struct restart_rec r;
    const char *end = p + n, *why = NULL;
    uint64_t items = 0, tombs = 0;
    int rc;

    (void)arg;
    if (tag != RESTART_SEC_ITEMS) {
        return NULL;            /* read by its module */
    }
    while ((rc = restart_next_rec(&p, end, st.h.item_size_max, &r,
                                  &why)) == 1) {
        if (r.tombstone) {
            tombs++;
        } else {
            items++;
        }
    }
    if (rc < 0) {
        return why;
    }
    if (items != st.h.items || tombs != st.h.tombstones) {
        return "item counts do not match its header";
    }
    return NULL;
}

int restart_open(const char *path, unsigned *hashpower)
{
    char *meta = meta_path(path, ".meta");
    uint64_t bytes = 0, sum = 0;
    const char *why;
    int m;

    *hashpower = 0;
    st.open_us = util_mono_us();
    if (meta == NULL) {
        go_cold(path, "out of memory");
        return 0;
    }
    m = read_marker(meta, &bytes, &sum);
    if (m < 0) {
        fprintf(stderr, "memory file %s: %s is not a paircached memory "
                "file marker (empty or foreign); remove it, or give -e "
                "another path\n", path, meta);
        free(meta);
        return -1;
    }
    /* Used once: a crash after this start must not bring back this
     * file's items over newer writes. */
    unlink(meta);
    free(meta);
    if (m == 1) {
        go_cold(path, "no clean-shutdown marker (first start, or the "
                "last stop was not clean)");
        return 0;
    }
    if (m == 2) {
        go_cold(path, "its marker is unreadable or of another version");
        return 0;
    }
    why = map_file(path, bytes, sum);
    if (why == NULL) {
        why = restart_walk_sections(st.map + sizeof(st.h), st.h.body_bytes,
                                    check_section, NULL);
    }
    if (why == NULL) {
        uint64_t n = 0, now = (uint64_t)time(NULL);
        const char *p = restart_section_data(RESTART_SEC_REPL, &n);
        why = persist_check(p, n, now > st.h.saved_at ? now - st.h.saved_at
                                                      : 0);
    }
    if (why != NULL) {
        go_cold(path, why);
        return 0;
    }
    *hashpower = st.h.hashpower;
    return 0;
}

static const char *load_section(uint32_t tag, const char *p, uint64_t n,
                                void *arg)
{
    struct restart_rec r;
    const char *end = p + n, *why = NULL;
    uint64_t *nomem = arg;
    enum apply_result a;

    if (tag != RESTART_SEC_ITEMS) {
        return NULL;
    }
    while (restart_next_rec(&p, end, st.h.item_size_max, &r, &why) == 1) {
        if (r.tombstone) {
            a = item_apply_delete(r.key, r.nkey, r.version);
        } else if (r.exptime != 0 && r.exptime <= current_time) {
            continue;           /* expired while we were stopped */
        } else {
            a = item_apply_store(r.key, r.nkey, hash(r.key, r.nkey),
                                 r.flags, r.exptime, r.version, r.value,
                                 r.vlen, r.key_binary, NULL, false);
        }
        if (a == APPLY_NO_MEMORY) {
            (*nomem)++;
        } else {
            st.loaded++;
        }
    }
    return NULL;
}

void restart_load(void)
{
    uint64_t t0 = util_mono_us(), nomem = 0;

    if (st.map == NULL) {
        return;
    }
    if (settings.repl_peer != NULL) {
        items_set_tombstone_ttl((uint32_t)settings.repl_tombstone_ttl);
    }
    item_observe_version(st.h.clock);
    if (st.h.flush_cutoff != 0) {
        item_apply_flush(st.h.flush_cutoff, st.h.flush_at);
    }
    (void)restart_walk_sections(st.map + sizeof(st.h), st.h.body_bytes,
                                load_section, &nomem);
    st.outcome = RESTART_WARM;
    st.why[0] = '\0';
    st.load_ms = (util_mono_us() - t0) / 1000;
    log_warn("memory file %s: restored %llu items and tombstones saved %llu "
             "s ago, in %llu ms%s", settings.memory_file,
             (unsigned long long)st.loaded,
             (unsigned long long)((uint64_t)time(NULL) > st.h.saved_at
                                  ? (uint64_t)time(NULL) - st.h.saved_at
                                  : 0),
             (unsigned long long)st.load_ms,
             nomem ? " (some did not fit in -m)" : "");
}

struct find_arg {
    uint32_t tag;
    const char *p;
    uint64_t n;
};

static const char *find_section(uint32_t tag, const char *p, uint64_t n,
                                void *arg)
{
    struct find_arg *f = arg;

    if (tag == f->tag && f->p == NULL) {
        f->p = p;
        f->n = n;
    }
    return NULL;
}

const char *restart_section_data(uint32_t tag, uint64_t *n)
{
    struct find_arg f = {tag, NULL, 0};

    if (st.map == NULL) {
        return NULL;
    }
    (void)restart_walk_sections(st.map + sizeof(st.h), st.h.body_bytes,
                                find_section, &f);
    *n = f.n;
    return f.p;
}

void restart_release(void)
{
    if (st.map != NULL) {
        munmap((void *)st.map, st.map_len);
        st.map = NULL;
    }
}

enum restart_outcome restart_outcome(void)
{
    return st.outcome;
}

const char *restart_why(void)
{
    return st.why;
}

uint64_t restart_items_loaded(void)
{
    return st.loaded;
}

uint64_t restart_open_us(void)
{
    return st.open_us;
}

uint64_t restart_load_ms(void)
{
    return st.load_ms;
}
