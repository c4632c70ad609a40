/*
 * authfile.h - "user:password" files: the -Y file of text-protocol
 * authentication (read once at start, password to the end of the line)
 * and the MEMCACHED_SASL_PWDB file that checks SASL PLAIN passwords
 * (read at each check, password to the next ':' or the end of the line,
 * as memcached's --enable-sasl-pwdb reads it).
 */
#ifndef AUTHFILE_H
#define AUTHFILE_H

#include <stdbool.h>
#include <stddef.h>

/* -Y: load the file; 0, or -1 with a message on stderr. */
int authfile_load(const char *path);
/* -Y: is user/password a pair of the loaded file? */
bool authfile_check(const char *user, size_t nuser, const char *pass,
                    size_t npass);
/* The password file of SASL: is user/password a pair of the file at
 * path now?  False too when it cannot be read. */
bool authfile_check_pwdb(const char *path, const char *user, size_t nuser,
                         const char *pass, size_t npass);

#endif
