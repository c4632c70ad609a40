/*
 * log.c - one line per call to stderr, written with a single write(2) so
 * that lines from different threads do not interleave; lines at the
 * default verbosity get a UTC timestamp unless stderr is the journal.
 * The `watch` command's log stream is separate (logger in stats.c).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected
 * to stderr; only when stderr is still that stream does the journal
 * stamp our lines.  Decided once: -1 unknown, 0 journal, 1 stamp. */
static int stamp_mode = -1;

static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    return js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
           fstat(STDERR_FILENO, &st) == 0 &&
           (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

/* "2026-12-07T01:02:03.456Z " into buf; its length. */
static int timestamp(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 ||
        gmtime_r(&ts.tv_sec, &tm) == NULL) {
        return 0;
    }
    return snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                    tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void log_write(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n, t = 0;

    if (level == 0 && __atomic_load_n(&stamp_mode, __ATOMIC_RELAXED) < 0) {
        __atomic_store_n(&stamp_mode, stderr_is_journal() ? 0 : 1,
                         __ATOMIC_RELAXED);
    }
    if (level == 0 && __atomic_load_n(&stamp_mode, __ATOMIC_RELAXED) == 1) {
        t = timestamp(buf, 32);
    }
    va_start(ap, fmt);
    n = vsnprintf(buf + t, sizeof(buf) - 1 - (size_t)t, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    n += t;
    if ((size_t)n > sizeof(buf) - 2) {
        n = sizeof(buf) - 2;
    }
    if (n == 0 || buf[n - 1] != '\n') {
        buf[n++] = '\n';
    }
    while (write(STDERR_FILENO, buf, (size_t)n) < 0) {
        /* EINTR: retry; anything else: nowhere to report it. */
        break;
    }
}
