/*
 * fuzz_repl.c - the replication port's parsers under libFuzzer: what a
 * stranger reaches before authentication (the handshake, with a secret)
 * and what an authenticated peer sends (without a secret: RESUME, the
 * control lines and the records, decoded and applied to real storage).
 * replication.c, repl_link_io.c and the repl_*.c files whose state it
 * resets are compiled into this file so that the link functions run
 * directly, on one end of a socketpair, without the replication thread.
 */
#include "log.h"
/* Every refused input logs a warning: millions of lines, and most of the
 * time spent writing them. */
#undef log_warn
#define log_warn(...) ((void)0)
/* A state transition the tables do not allow is a crash here, so that
 * the fuzzer finds any input that drives one (repl_fsm.c). */
#define REPL_FSM_STRICT 1

#include "replication.c"
#include "repl_link_io.c"
#include "repl_apply.c"
#include "repl_auth.c"
#include "repl_stream.c"

#include "fuzz/fuzz_storage.h"
#include "item_locks.h"
#include "stats.h"

#include <signal.h>

#define FUZZ_MAXBYTES (16 * 1024 * 1024)
#define PUMP_ROUNDS 64              /* walk slices and sends per chunk */

/* FUZZ_REPL_RECORDS: no secret, so an input can pass the handshake with
 * "AUTH none" and go on to records; otherwise a secret, and only the
 * pre-authentication lines are reachable, as for a stranger. */
#ifdef FUZZ_REPL_RECORDS
static const bool with_secret = false;
#else
static const bool with_secret = true;
#endif

static struct settings base_settings;
/* FUZZ_REPL_ECHO: what the node sends goes to stdout, to see what an
 * input does when replayed. */
static bool echo;

static void repl_fuzz_init(void)
{
    static char key[] = "fuzz-replication-secret";
    int fds[2];

    signal(SIGPIPE, SIG_IGN);
    echo = getenv("FUZZ_REPL_ECHO") != NULL;
    settings_init();
    settings.maxbytes = FUZZ_MAXBYTES;
    settings.num_threads = 1;
    settings.lru_crawler = false;
    settings.slab_reassign = false;
    settings.repl_idle_copy = false;    /* no scheduling class changes */
    settings.repl_backlog_size = 1024 * 1024;
    util_clock_init();
    if (stats_init(1) != 0 || item_locks_init(FUZZ_HASHPOWER) != 0) {
        abort();
    }
    tstats = stats_thread(0);
    if (with_secret) {
        secret = key;
        secret_len = strlen(key);
    }
    for (int i = 0; i < MAX_LINKS; i++) {
        repl_links[i].fd = -1;
    }
    repl_run_id = 0x5eed5eed5eed5eedULL | 1;
    repl_node_id = 1;
    repl_base = event_base_new();
    if (repl_base == NULL || pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0 ||
        stream_init(settings.repl_backlog_size, fds[1]) != 0) {
        abort();
    }
    wake_rd = fds[0];
    wake_wr = fds[1];
    items_set_mutation_hook(repl_feed);
    base_settings = settings;
}

static void storage_reset(void)
{
    settings = base_settings;
    fuzz_storage_reset(repl_node_id);
    /* What one input learnt about the peer must not leak into the next. */
    memset(&repl_applied, 0, sizeof(repl_applied));
    flush_seen = 0;
    acked_off = 0;
}

static void drain(int fd, bool show)
{
    static char buf[65536];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (show && echo && fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
            abort();
        }
    }
}

/* Let the link read what is there, send what it queued (a full copy
 * walks a slice per round) and drop what it sent. */
static void serve(struct link *l, int peer)
{
    for (int i = 0; i < PUMP_ROUNDS && l->fd >= 0; i++) {
        link_read(l);
        if (l->fd < 0) {
            break;
        }
        link_pump(l, true);
        drain(peer, true);
        drain(wake_rd, false);
        if (l->out_state != OUT_COPY) {
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    struct link *l = &repl_links[0];
    bool dialled;
    size_t cut;
    int fds[2];

    if (!inited) {
        repl_fuzz_init();
        inited = true;
    }
    if (size < 1) {
        return 0;
    }
    dialled = (data[0] & 1) != 0;   /* which side of the handshake we are */
    data++;
    size--;
    storage_reset();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   fds) != 0 || !link_open(l, fds[0], dialled, "fuzz")) {
        abort();
    }
    /* Two writes, each served before the next: lines and record data
     * split across reads. */
    cut = size / 2;
    if (write(fds[1], data, cut) != (ssize_t)cut) {
        abort();
    }
    serve(l, fds[1]);
    if (l->fd >= 0 && size > cut) {
        size_t left = size - cut;
        const uint8_t *p = data + cut;
        while (left > 0 && l->fd >= 0) {
            ssize_t k = write(fds[1], p, left);
            if (k <= 0) {
                serve(l, fds[1]);   /* socket full: let the link read */
                continue;
            }
            p += k;
            left -= (size_t)k;
        }
        serve(l, fds[1]);
    }
    if (l->fd >= 0) {
        link_close(l, "fuzz input done");
    }
    close(fds[1]);
    return 0;
}
