/*
 * sasl.h - SASL authentication of the binary protocol (-S).  Built with
 * Cyrus SASL (libsasl2) it is memcached's: the mechanisms and the sasldb
 * that memcached.conf names (SASL_CONF_PATH, /etc/sasl, /etc/sasl2), and
 * MEMCACHED_SASL_PWDB (or -o sasl_pwdb) as a password check for PLAIN.
 * Built without it, only PLAIN against that password file.
 */
#ifndef MC_SASL_H
#define MC_SASL_H

#include <stdbool.h>
#include <stddef.h>

/* How an AUTH or STEP ended. */
enum sasl_result {
    SASL_RES_OK,                /* authenticated */
    SASL_RES_CONTINUE,          /* another STEP with the challenge */
    SASL_RES_FAIL               /* refused */
};

/* Longest mechanism name memcached takes (longer: EINVAL). */
#define SASL_MECH_MAX 32

/* Set up at start (main thread); 0, or -1 with a message on stderr. */
int sasl_setup(void);
/* Whether this build uses Cyrus SASL. */
bool sasl_cyrus(void);

/* Per connection: *state starts NULL and is created on first use; its
 * worker alone calls these.  The returned bytes stay valid until the
 * next call for the same connection. */
int sasl_conn_mechs(void **state, const char **out, unsigned *outlen);
enum sasl_result sasl_conn_start(void **state, const char *mech,
                                 size_t nmech, const char *data,
                                 unsigned len, const char **out,
                                 unsigned *outlen);
enum sasl_result sasl_conn_step(void **state, const char *data,
                                unsigned len, const char **out,
                                unsigned *outlen);
void sasl_conn_free(void **state);

#endif
