/*
 * log.h - leveled logging to stderr, gated by -v.
 */
#ifndef LOG_H
#define LOG_H

#include "settings.h"

/* Default verbosity: warnings, and log_event(): the pair's operational
 * events (link up/down, resyncs, the start-up gate), one line each with
 * the peer's address and the reason; both carry a UTC timestamp unless
 * stderr is systemd's journal, which stamps lines itself.  -v: lifecycle
 * details; -vv: state changes and per-connection events; -vvv: per
 * request.  Nothing per request below -vv. */
#define log_warn(...) log_write(0, __VA_ARGS__)
#define log_event(...) log_write(0, __VA_ARGS__)
#define log_info(...) \
    do { if (settings.verbose >= 1) log_write(1, __VA_ARGS__); } while (0)
#define log_debug(...) \
    do { if (settings.verbose >= 2) log_write(2, __VA_ARGS__); } while (0)
#define log_trace(...) \
    do { if (settings.verbose >= 3) log_write(3, __VA_ARGS__); } while (0)

void log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
