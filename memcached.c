/*
 * memcached.c - main(): the command line into struct settings, start-up
 * order (limits, storage, workers, listeners, privileges), signals, and a
 * clean stop.  Everything else lives in the modules it starts.
 */
#include "memcached.h"
#include "assoc.h"
#include "conn.h"
#include "conn_listen.h"
#include "crawler.h"
#include "item_chunk.h"
#include "items.h"
#include "lru_maintainer.h"
#include "log.h"
#include "options.h"
#include "proto.h"
#include "replication.h"
#include "repl_persist.h"
#include "restart.h"
#include "repl_walk.h"
#include "authfile.h"
#include "sasl.h"
#include "tls.h"
#include "settings.h"
#include "slabs.h"
#include "stats.h"
#include "item_locks.h"
#include "thread.h"
#include "util.h"
#include "watch.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

static struct event_base *main_base;
static struct event *gate_ev;           /* fires when replication is ready */
static bool save_on_stop;               /* stopped by SIGUSR1, SIGTERM or
                                           "shutdown graceful": write -e */
static int start_listeners(void);
static int reopen_listeners(void);

/* --- process setup --------------------------------------------------------- */

/* Room for -c connections plus listeners, pipes and log files. */
static int raise_fd_limit(void)
{
    struct rlimit rl, want;
    rlim_t need = (rlim_t)settings.maxconns + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return -1;
    }
    if (rl.rlim_cur >= need) {
        return (int)rl.rlim_cur;
    }
    want.rlim_cur = need;
    want.rlim_max = rl.rlim_max > need ? rl.rlim_max : need;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
        return (int)need;
    }
    /* Not allowed to raise the hard limit: take what it gives, if that
     * still holds -c connections. */
    want.rlim_cur = rl.rlim_max;
    want.rlim_max = rl.rlim_max;
    if (rl.rlim_max >= (rlim_t)settings.maxconns &&
        setrlimit(RLIMIT_NOFILE, &want) == 0) {
        return (int)want.rlim_cur;
    }
    fprintf(stderr, "failed to set rlimit for open files. Try starting as "
                    "root or requesting smaller maxconns value.\n");
    return -1;
}

static int drop_privileges(void)
{
    struct passwd *pw;

    if (getuid() != 0 && geteuid() != 0) {
        return 0;
    }
    if (settings.username == NULL || *settings.username == '\0') {
        fprintf(stderr, "can't run as root without the -u switch\n");
        return -1;
    }
    pw = getpwnam(settings.username);
    if (pw == NULL) {
        fprintf(stderr, "can't find the user %s to switch to\n",
                settings.username);
        return -1;
    }
    {
        /* Let the process return a thread from SCHED_IDLE to nice 0
         * (a full copy runs idle; doc/replication.txt).  It allows no
         * priority above the default. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NICE, &rl) == 0 && rl.rlim_cur < 20) {
            rl.rlim_cur = 20;
            if (rl.rlim_max < 20) {
                rl.rlim_max = 20;
            }
            (void)setrlimit(RLIMIT_NICE, &rl);
        }
    }
    if (setgroups(0, NULL) != 0 && pw->pw_uid != 0) {
        fprintf(stderr, "failed to drop supplementary groups\n");
        return -1;
    }
    if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "failed to assume identity of user %s\n",
                settings.username);
        return -1;
    }
    return 0;
}

static int daemonize(void)
{
    int fd;

    switch (fork()) {
    case -1:
        return -1;
    case 0:
        break;
    default:
        _exit(EXIT_SUCCESS);
    }
    if (setsid() == -1) {
        return -1;
    }
    if (chdir("/") != 0) {
        return -1;
    }
    fd = open("/dev/null", O_RDWR);
    if (fd < 0) {
        return -1;
    }
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO) {
        close(fd);
    }
    return 0;
}

/* As memcached does: warn about a pid file naming a running process,
 * write PATH.tmp and rename it, and on any failure only warn (the
 * server runs without a pid file). */
static void write_pid_file(const char *path)
{
    char tmp[1024], line[64];
    FILE *f = fopen(path, "r");

    if (f != NULL) {
        unsigned long pid;
        char *end;
        if (fgets(line, sizeof(line), f) != NULL &&
            (pid = strtoul(line, &end, 10)) > 0 &&
            (*end == '\n' || *end == '\0') && kill((pid_t)pid, 0) == 0) {
            fprintf(stderr, "WARNING: The pid file contained the following "
                    "(running) pid: %lu\n", pid);
        }
        fclose(f);
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        fprintf(stderr, "Could not open the pid file %s for writing: %s\n",
                path, strerror(ENAMETOOLONG));
        return;
    }
    f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "Could not open the pid file %s for writing: %s\n",
                tmp, strerror(errno));
        return;
    }
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0) {
        fprintf(stderr, "Could not close the pid file %s: %s\n", tmp,
                strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "Could not rename the pid file from %s to %s: %s\n",
                tmp, path, strerror(errno));
    }
}

/* --- events ------------------------------------------------------------------ */

static void clock_cb(evutil_socket_t fd, short which, void *arg)
{
    (void)fd;
    (void)which;
    (void)arg;
    util_clock_tick();
    if (repl_enabled()) {
        repl_watchdog();
    }
}

/* SIGUSR1 (memcached's graceful stop) and SIGTERM (systemd's) save the
 * memory file; SIGINT stops without it, as memcached's SIGINT does. */
static void signal_cb(evutil_socket_t sig, short which, void *arg)
{
    (void)which;
    (void)arg;
    log_info("signal %d received, shutting down", (int)sig);
    save_on_stop = sig != SIGINT;
    event_base_loopbreak(main_base);
}

/* The replication thread says the client port may open ('r'), or must
 * close again after a stall ('c': the listeners, and the clients'
 * connections, which would be served from a stale copy). */
static void gate_cb(evutil_socket_t fd, short which, void *arg)
{
    static bool listening, opened;
    char buf[16];
    ssize_t n, i;

    (void)which;
    (void)arg;
    n = read(fd, buf, sizeof(buf));
    for (i = 0; i < n; i++) {
        if (buf[i] == 'c' && listening) {
            conn_unlisten();
            workers_close_clients();
            listening = false;
        } else if (buf[i] == 'r' && !listening) {
            if ((opened ? reopen_listeners() : start_listeners()) != 0) {
                log_warn("cannot open the client port; stopping");
                event_base_loopbreak(main_base);
                return;
            }
            listening = opened = true;
        }
    }
}

static void request_shutdown(bool graceful)
{
    save_on_stop = graceful;
    event_base_loopbreak(main_base);
}

/* memcached's test hook: T_MEMD_INITIAL_MALLOC=N starts total_malloced
 * at N bytes, as if that much were already allocated (its suite's
 * 64bit.t checks the limit arithmetic past 4 GB this way). */
static size_t initial_malloced(void)
{
    const char *v = getenv("T_MEMD_INITIAL_MALLOC");
    uint64_t n;

    if (v == NULL || !safe_strtoull(v, &n)) {
        return 0;
    }
    return (size_t)n;
}

/* What storage reports: counted (stats.c) and shown to watchers. */
static const struct item_events item_events = {
    .delta_hit = stats_delta_hit,
    .evicted = watch_eviction,
};

static int start_storage(unsigned saved_hp)
{
    int hp = settings.hashpower_init ? settings.hashpower_init : 16;

    if ((int)saved_hp > hp) {
        hp = (int)saved_hp;     /* the memory file's table size */
    }
    slabs_set_hugepages(settings.slab_hugepages);
    slabs_set_accounting(settings.slab_reassign ||
                         settings.slab_chunk_size_max !=
                             settings.slab_page_size, initial_malloced());
    if (slabs_init(settings.maxbytes, settings.factor,
                   (size_t)settings.chunk_size,
                   (size_t)settings.slab_chunk_size_max,
                   (size_t)settings.item_size_max, settings.prealloc) != 0) {
        fprintf(stderr, "failed to set up the slab allocator\n");
        return -1;
    }
    item_chunks_init((size_t)settings.item_size_max);
    if (item_locks_init((unsigned)(hp < 13 ? hp : 13)) != 0 ||
        assoc_init(hp) != 0 || items_init() != 0) {
        fprintf(stderr, "failed to allocate the hash table\n");
        return -1;
    }
    items_set_node_id((unsigned)(getpid() & 0xFF));
    items_set_events(&item_events);
    return 0;
}

static int listen_inet(void);

/* After a stall closed them (conn_unlisten): the stream listeners
 * again.  UDP sockets stay open through a stall (they are not gated),
 * and the port file was written the first time. */
static int reopen_listeners(void)
{
    if (settings.socketpath != NULL) {
        return conn_listen_unix(main_base, settings.socketpath,
                                settings.access);
    }
    if (settings.monitor_listen != NULL &&
        conn_listen_tcp(main_base, settings.monitor_listen, 0, true) != 0) {
        return -1;
    }
    if (settings.port != 0 &&
        conn_listen_tcp(main_base, settings.inter, settings.port,
                        false) != 0) {
        return -1;
    }
    return 0;
}

static int start_listeners(void)
{
    if (settings.socketpath != NULL) {
        return conn_listen_unix(main_base, settings.socketpath,
                                settings.access);
    }
    if (settings.monitor_listen != NULL &&
        conn_listen_tcp(main_base, settings.monitor_listen, 0, true) != 0) {
        fprintf(stderr, "failed to listen on monitor_listen %s\n",
                settings.monitor_listen);
        return -1;
    }
    return listen_inet();
}

/* The TCP and UDP ports; as memcached, each port bound is reported in
 * $MEMCACHED_PORT_FILENAME (written to NAME.lck, renamed when complete)
 * for tests and wrappers that start us on a free port (-p -1). */
static int listen_inet(void)
{
    const char *name = getenv("MEMCACHED_PORT_FILENAME");
    char tmp[PATH_MAX];
    FILE *f = NULL;
    int rc = 0;

    if (name != NULL &&
        (size_t)snprintf(tmp, sizeof(tmp), "%s.lck", name) < sizeof(tmp)) {
        f = fopen(tmp, "a");
        if (f == NULL) {
            fprintf(stderr, "Failed to open \"%s\": %s\n", tmp,
                    strerror(errno));
        }
    }
    conn_set_port_file(f);
    if (settings.port != 0 &&
        conn_listen_tcp(main_base, settings.inter, settings.port,
                        false) != 0) {
        fprintf(stderr, "failed to listen on TCP port %d: %s\n",
                settings.port, strerror(errno));
        rc = -1;
    } else if (settings.udpport != 0 &&
               conn_listen_udp(settings.inter, settings.udpport) != 0) {
        fprintf(stderr, "failed to listen on UDP port %d: %s\n",
                settings.udpport, strerror(errno));
        rc = -1;
    }
    conn_set_port_file(NULL);
    if (f != NULL) {
        fclose(f);
        rename(tmp, name);
    }
    return rc;
}

/* Before any memory or thread: limits, identity, daemon, the secrets and
 * certificates the options name.  0, or the exit status. */
static int prepare_process(int *maxfds)
{
    if (settings.maximize_core) {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_CORE, &rl);
    }
    *maxfds = raise_fd_limit();
    if (*maxfds < 0) {
        return EX_OSERR;
    }
    if ((getuid() == 0 || geteuid() == 0) &&
        (settings.username == NULL || *settings.username == '\0')) {
        fprintf(stderr, "can't run as root without the -u switch\n");
        return EX_USAGE;
    }
    if (settings.daemonize && daemonize() != 0) {
        fprintf(stderr, "failed to daemon() in order to daemonize\n");
        return EXIT_FAILURE;
    }
    if (settings.lock_memory && mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        fprintf(stderr, "warning: -k invalid, mlockall() failed: %s\n",
                strerror(errno));
    }
    signal(SIGPIPE, SIG_IGN);
    util_clock_init();
    if (settings.sasl && sasl_setup() != 0) {
        return EXIT_FAILURE;
    }
    if (settings.auth_file != NULL && authfile_load(settings.auth_file) != 0) {
        return EX_USAGE;
    }
    if (settings.ssl.enabled && tls_server_configure() != 0) {
        return EX_USAGE;
    }
    return 0;
}

/* With -x: start the link; the client port opens through gate_cb when
 * the first sync is done. */
static int start_replication(void)
{
    int fds[2];

    if (pipe(fds) != 0 || repl_start(fds[1]) != 0) {
        fprintf(stderr, "failed to start replication\n");
        return EX_OSERR;
    }
    if (settings.memory_file != NULL) {
        restart_add_section(RESTART_SEC_REPL, persist_save);
    }
    gate_ev = event_new(main_base, fds[0], EV_READ | EV_PERSIST, gate_cb,
                        NULL);
    if (gate_ev == NULL || event_add(gate_ev, NULL) != 0) {
        return EX_OSERR;
    }
    return 0;
}

/* The client port opens after the first sync, up to
 * repl_initial_sync_timeout from now: a port already taken (say by
 * Debian's memcached on 11211) must fail now, not then. */
static int check_client_port_free(void)
{
    if (settings.socketpath == NULL && settings.port != 0 &&
        conn_listen_tcp(NULL, settings.inter, settings.port, false) != 0) {
        fprintf(stderr, "failed to listen on TCP port %d: the client port, "
                "opened after the first sync, must be free\n",
                settings.port);
        return EX_OSERR;
    }
    return 0;
}

/* Storage (warm from -e when it checks out), workers, replication or
 * the listeners, then the background threads.  0, or the exit status. */
static int start_service(int maxfds)
{
    unsigned saved_hp = 0;
    int rc;

    if (settings.memory_file != NULL &&
        restart_open(settings.memory_file, &saved_hp) != 0) {
        return EX_DATAERR;
    }
    if (start_storage(saved_hp) != 0 || stats_init(settings.num_threads) != 0 ||
        conn_init(maxfds) != 0) {
        return EX_OSERR;
    }
    main_base = event_base_new();
    if (main_base == NULL || workers_start(settings.num_threads) != 0) {
        fprintf(stderr, "failed to start the worker threads\n");
        return EX_OSERR;
    }
    if (repl_configure() != 0) {
        return EX_USAGE;
    }
    if (settings.memory_file != NULL) {
        restart_load();
    }
    rc = repl_enabled() ? start_replication()
                        : (start_listeners() != 0 ? EX_OSERR : 0);
    if (rc != 0) {
        return rc;
    }
    restart_release();
    if (drop_privileges() != 0) {
        return EX_OSERR;
    }
    if (repl_enabled()) {
        copy_check_priority();
        rc = check_client_port_free();
        if (rc != 0) {
            return rc;
        }
    }
    if (settings.pid_file != NULL) {
        write_pid_file(settings.pid_file);
    }
    if (settings.hash_expand) {
        assoc_start_expander();
    }
    if (settings.lru_crawler && crawler_start() != 0) {
        log_warn("failed to start the LRU crawler thread");
    }
    if (settings.lru_maintainer && lru_maintainer_start() != 0) {
        fprintf(stderr, "failed to start the LRU maintainer thread\n");
        return EX_OSERR;
    }
    return 0;
}

/* The main thread's loop: the clock, the signals, until a stop. */
static int run_main_loop(void)
{
    struct timeval one = {1, 0};
    struct event *clock_ev, *sigterm, *sigint, *sigusr1;
    int rc = 0;

    proto_shutdown_fn = request_shutdown;
    clock_ev = event_new(main_base, -1, EV_PERSIST, clock_cb, NULL);
    sigterm = evsignal_new(main_base, SIGTERM, signal_cb, NULL);
    sigint = evsignal_new(main_base, SIGINT, signal_cb, NULL);
    sigusr1 = evsignal_new(main_base, SIGUSR1, signal_cb, NULL);
    signal(SIGHUP, SIG_IGN);
    if (clock_ev == NULL || sigterm == NULL || sigint == NULL ||
        sigusr1 == NULL || event_add(clock_ev, &one) != 0 ||
        event_add(sigterm, NULL) != 0 || event_add(sigint, NULL) != 0 ||
        event_add(sigusr1, NULL) != 0) {
        fprintf(stderr, "failed to set up the main event loop\n");
        rc = EX_OSERR;
    } else {
        log_info("paircached %s serving on port %d", SERVER_VERSION,
                 settings.port);
        event_base_dispatch(main_base);
    }
    if (clock_ev != NULL) {
        event_free(clock_ev);
    }
    if (sigterm != NULL) {
        event_free(sigterm);
    }
    if (sigint != NULL) {
        event_free(sigint);
    }
    if (sigusr1 != NULL) {
        event_free(sigusr1);
    }
    return rc;
}

/* Clients first, then what they wrote to the peer, then the link; the
 * memory file last, when nothing changes any more. */
static void stop_service(void)
{
    workers_stop();
    if (save_on_stop) {
        repl_drain((unsigned)settings.repl_timeout * 1000);
    }
    repl_stop();
    crawler_stop();
    lru_maintainer_stop();
    assoc_stop_expander();
    if (settings.memory_file != NULL && save_on_stop) {
        (void)restart_save(settings.memory_file);
    }
    if (settings.pid_file != NULL) {
        unlink(settings.pid_file);
    }
    if (gate_ev != NULL) {
        event_free(gate_ev);
    }
}

int main(int argc, char **argv)
{
    int maxfds;
    int rc;

    settings_init();
    rc = options_parse(argc, argv);
    if (rc != 0) {
        return rc > 0 ? EXIT_SUCCESS : EX_USAGE;
    }
    rc = prepare_process(&maxfds);
    if (rc == 0) {
        rc = start_service(maxfds);
    }
    if (rc == 0) {
        rc = run_main_loop();
    }
    if (rc != 0) {
        return rc;
    }
    stop_service();
    log_info("shut down cleanly");
    return EXIT_SUCCESS;
}
