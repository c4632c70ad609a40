/*
 * log.c - one line per call to stderr, written with a single write(2) so
 * that lines from different threads do not interleave.  The `watch`
 * command's log stream is separate (logger in stats.c).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void log_write(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    (void)level;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
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
