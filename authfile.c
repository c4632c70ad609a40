/*
 * authfile.c - the two "user:password" files (authfile.h).  Passwords
 * are compared in constant time for a given length; user names are not
 * secret.  What the text and binary protocols do with the answer is
 * proto_text.c's and sasl.c's business.
 */
#include "authfile.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A line longer than this is not an entry (memcached: 256). */
#define PWDB_LINE_MAX 1024

struct auth_user {
    char *name;                 /* user name */
    char *pass;                 /* password */
    struct auth_user *next;     /* list link */
};

static struct auth_user *users; /* -Y, loaded at start */

int authfile_load(const char *path)
{
    char line[1024];
    struct stat st;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        fprintf(stderr, "Could not open the auth file %s\n", path);
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0077)) {
        log_warn("auth file %s is readable by other users", path);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *colon = strchr(line, ':');
        size_t n = strcspn(line, "\r\n");
        struct auth_user *u;

        line[n] = '\0';
        if (colon == NULL || line[0] == '#' || colon == line) {
            continue;
        }
        *colon = '\0';
        u = calloc(1, sizeof(*u));
        if (u == NULL || (u->name = strdup(line)) == NULL ||
            (u->pass = strdup(colon + 1)) == NULL) {
            fclose(f);
            return -1;
        }
        u->next = users;
        users = u;
    }
    fclose(f);
    return 0;
}

static bool equal_ct(const char *a, size_t na, const char *b, size_t nb)
{
    unsigned char diff = (unsigned char)(na != nb);
    size_t i;

    for (i = 0; i < na; i++) {
        diff |= (unsigned char)(a[i] ^ (i < nb ? b[i] : 0));
    }
    return diff == 0;
}

bool authfile_check(const char *user, size_t nuser, const char *pass,
                    size_t npass)
{
    struct auth_user *u;

    for (u = users; u != NULL; u = u->next) {
        if (strlen(u->name) == nuser && memcmp(u->name, user, nuser) == 0) {
            return equal_ct(u->pass, strlen(u->pass), pass, npass);
        }
    }
    return false;
}

bool authfile_check_pwdb(const char *path, const char *user, size_t nuser,
                         const char *pass, size_t npass)
{
    char line[PWDB_LINE_MAX];
    bool ok = false;
    FILE *f;

    if (path == NULL || nuser == 0) {
        return false;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        log_warn("SASL: cannot open the password file %s", path);
        return false;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t end;
        if (strncmp(line, user, nuser) != 0 || line[nuser] != ':' ||
            memchr(user, '\0', nuser) != NULL) {
            continue;
        }
        /* the first entry of the user decides, as in memcached */
        end = nuser + 1 + strcspn(line + nuser + 1, ":\r\n");
        ok = equal_ct(line + nuser + 1, end - nuser - 1, pass, npass);
        break;
    }
    fclose(f);
    return ok;
}
