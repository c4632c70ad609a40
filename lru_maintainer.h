/*
 * lru_maintainer.h - the background thread that keeps each class's
 * segmented LRU in shape (memcached's LRU maintainer).
 */
#ifndef LRU_MAINTAINER_H
#define LRU_MAINTAINER_H

#include <stdint.h>

/* Start/stop the thread; 0 or -1. */
int lru_maintainer_start(void);
void lru_maintainer_stop(void);
/* Passes over all classes so far (stats lru_maintainer_juggles). */
uint64_t lru_maintainer_juggles(void);

#endif
