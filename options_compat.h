/*
 * options_compat.h - the -o sub-options memcached 1.6.18 takes for
 * features paircached lacks or has in another shape (options_compat.c).
 */
#ifndef OPTIONS_COMPAT_H
#define OPTIONS_COMPAT_H

#include <stdbool.h>

enum opt_result {
    OPT_DONE,                   /* taken */
    OPT_BAD,                    /* bad value; a message is on stderr */
    OPT_UNKNOWN                 /* not one of these */
};

/* One -o key[=value] (val NULL without "="). */
enum opt_result options_compat(const char *opt, const char *val);
/* -o slab_chunk_max was given (no_modern then leaves it alone). */
void options_compat_chunk_max_given(void);
/* Once every option is read: checks that need the final -n and
 * slab_chunk_max (slab_sizes).  false with a message on stderr. */
bool options_compat_finish(void);

#endif
