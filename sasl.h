/*
 * sasl.h - SASL PLAIN authentication for the binary protocol, against a
 * password file of "user:password" lines.
 */
#ifndef SASL_H
#define SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Load the password file; 0, or -1 with a message on stderr. */
int sasl_init(const char *path);
/* The mechanisms we offer, space separated. */
const char *sasl_mechs(void);
/* Is mech (any case) one we offer? */
bool sasl_mech_ok(const char *mech, size_t nmech);
/* Check PLAIN credentials "[authzid]\0user\0pass". */
bool sasl_check_plain(const char *data, uint32_t len);
/* Check a user/password pair (text protocol authentication). */
bool sasl_check_user(const char *user, size_t nuser, const char *pass,
                     size_t npass);

#endif
