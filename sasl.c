/*
 * sasl.c - the password database and the PLAIN mechanism.  The file is
 * read once at start; lines are "user:password" (the password runs to the
 * end of the line).  Passwords are compared in constant time.
 */
#include "sasl.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct sasl_user {
    char *name;                 /* user name */
    char *pass;                 /* password */
    struct sasl_user *next;     /* list link */
};

static struct sasl_user *users;

int sasl_init(const char *path)
{
    char line[1024];
    struct stat st;
    FILE *f;

    if (path == NULL) {
        fprintf(stderr, "SASL: no password database; give -o sasl_pwdb=PATH "
                        "or set MEMCACHED_SASL_PWDB\n");
        return -1;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "SASL: cannot open password database %s\n", path);
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0077)) {
        log_warn("SASL: password database %s is readable by other users",
                 path);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *colon = strchr(line, ':');
        size_t n = strcspn(line, "\r\n");
        struct sasl_user *u;

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

const char *sasl_mechs(void)
{
    return "PLAIN";
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

bool sasl_check_user(const char *user, size_t nuser, const char *pass,
                     size_t npass)
{
    struct sasl_user *u;

    for (u = users; u != NULL; u = u->next) {
        if (strlen(u->name) == nuser && memcmp(u->name, user, nuser) == 0) {
            return equal_ct(u->pass, strlen(u->pass), pass, npass);
        }
    }
    return false;
}

bool sasl_mech_ok(const char *mech, size_t nmech)
{
    return nmech == 5 && strncasecmp(mech, "PLAIN", 5) == 0;
}

bool sasl_check_plain(const char *data, uint32_t len)
{
    const char *user, *pass, *end = data + len;

    if (len == 0) {
        return false;
    }
    /* [authzid] NUL authcid NUL passwd */
    user = memchr(data, '\0', len);
    if (user == NULL) {
        return false;
    }
    user++;
    pass = memchr(user, '\0', (size_t)(end - user));
    if (pass == NULL) {
        return false;
    }
    return sasl_check_user(user, (size_t)(pass - user), pass + 1,
                           (size_t)(end - pass - 1));
}
