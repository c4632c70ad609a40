/*
 * hash.h - key hashing for the hash table and the item lock stripes.
 */
#ifndef HASH_H
#define HASH_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t (*hash_fn)(const void *key, size_t length);

/* The function chosen by -o hash_algorithm; set by hash_init(). */
extern hash_fn hash;

uint32_t hash_murmur3(const void *key, size_t length);
uint32_t hash_jenkins(const void *key, size_t length);

/* Select by name; return -1 for an unknown name. */
int hash_init(const char *name);

#endif
