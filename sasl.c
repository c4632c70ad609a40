/*
 * sasl.c - the binary protocol's SASL (sasl.h).  With Cyrus SASL: one
 * sasl_server_init() at start with memcached's callbacks (where the
 * config is, logging at -v/-vv, the PLAIN password file), then a
 * sasl_conn_t per connection.  Without it: PLAIN only, against the
 * password file.  The protocol side (stats, replies, who may do what) is
 * proto_bin.c's.
 */
#include "memcached.h"
#include "sasl.h"
#include "authfile.h"
#include "log.h"
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef ENABLE_SASL
#include <sasl/sasl.h>      /* its guard is SASL_H: ours is MC_SASL_H */

static char hostname[1025];     /* the realm, as memcached passes it */
static bool pwdb_only;          /* no memcached.conf: PLAIN + the file */

/*
 * Where memcached.conf is: $SASL_CONF_PATH, else /etc/sasl or /etc/sasl2
 * when memcached.conf is there (or is a directory holding one), as
 * memcached 1.6.18 looks.  Without one memcached refuses to start; so do
 * we, unless a password file is given: then PLAIN alone, checked
 * against the file (how -S worked here before Cyrus SASL).
 */
static const char *find_conf_dir(void)
{
    static const char *const dirs[] = {"/etc/sasl", "/etc/sasl2"};
    static char found[64];
    const char *env = getenv("SASL_CONF_PATH");
    size_t i;

    if (env != NULL) {
        return env;
    }
    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char f[64];
        snprintf(f, sizeof(f), "%s/memcached.conf/memcached.conf", dirs[i]);
        if (access(f, F_OK) == 0) {
            snprintf(found, sizeof(found), "%s/memcached.conf", dirs[i]);
            return found;
        }
        snprintf(f, sizeof(f), "%s/memcached.conf", dirs[i]);
        if (access(f, F_OK) == 0) {
            return dirs[i];
        }
    }
    return NULL;
}

static int getconfpath_cb(void *context, char **path)
{
    const char *dir = find_conf_dir();

    (void)context;
    if (dir == NULL && pwdb_only) {
        dir = "/nonexistent";   /* no file: Cyrus's defaults + getopt_cb */
    }
    if (settings.verbose) {
        fprintf(stderr, dir != NULL ? "Reading configuration from: <%s>\n"
                                    : "Failed to locate a config path%s\n",
                dir != NULL ? dir : "");
    }
    *path = (char *)dir;
    return dir != NULL ? SASL_OK : SASL_FAIL;
}

/* Only in the password-file mode: PLAIN, and no other mechanism. */
static int getopt_cb(void *context, const char *plugin, const char *option,
                     const char **result, unsigned *len)
{
    (void)context;
    (void)plugin;
    if (pwdb_only && strcmp(option, "mech_list") == 0) {
        *result = "plain";
        if (len != NULL) {
            *len = 5;
        }
        return SASL_OK;
    }
    return SASL_FAIL;
}

static int log_cb(void *context, int level, const char *message)
{
    (void)context;
    if (level == SASL_LOG_NONE ||
        (level >= SASL_LOG_NOTE && settings.verbose < 2) ||
        (level >= SASL_LOG_FAIL && settings.verbose < 1)) {
        return SASL_OK;
    }
    fprintf(stderr, "SASL (severity %d): %s\n", level, message);
    return SASL_OK;
}

/* MEMCACHED_SASL_PWDB: Cyrus asks here first; a refusal falls through
 * to its own check (sasldb), as with memcached.  Cyrus names the user
 * "user@realm", the realm being this host's name unless the client gave
 * one: a line for "user@host" matches (memcached's form), and so does
 * one for the bare "user" when the realm is ours. */
static int checkpass_cb(sasl_conn_t *conn, void *context, const char *user,
                        const char *pass, unsigned passlen,
                        struct propctx *propctx)
{
    size_t n = strlen(user), nh = strlen(hostname);

    (void)conn;
    (void)context;
    (void)propctx;
    if (authfile_check_pwdb(settings.sasl_pwdb, user, n, pass, passlen)) {
        return SASL_OK;
    }
    if (nh > 0 && n > nh + 1 && user[n - nh - 1] == '@' &&
        strcmp(user + n - nh, hostname) == 0 &&
        authfile_check_pwdb(settings.sasl_pwdb, user, n - nh - 1, pass,
                            passlen)) {
        return SASL_OK;
    }
    log_info("SASL: user <%s> failed to authenticate", user);
    return SASL_NOAUTHZ;
}

/* Cyrus takes every callback as int (*)(void); the cast goes through
 * void (*)(void), the type GCC accepts any function pointer as. */
typedef int (*sasl_cb_fn)(void);
#define CB(f) ((sasl_cb_fn)(void (*)(void))(f))
static sasl_callback_t callbacks[] = {
    {SASL_CB_SERVER_USERDB_CHECKPASS, CB(checkpass_cb), NULL},
    {SASL_CB_LOG, CB(log_cb), NULL},
    {SASL_CB_GETCONFPATH, CB(getconfpath_cb), NULL},
    {SASL_CB_GETOPT, CB(getopt_cb), NULL},
    {SASL_CB_LIST_END, NULL, NULL}
};

int sasl_setup(void)
{
    if (settings.sasl_pwdb == NULL) {
        /* no file: the callback list starts at the log one */
        callbacks[0].id = SASL_CB_LOG;
        callbacks[0].proc = CB(log_cb);
    }
    pwdb_only = settings.sasl_pwdb != NULL && find_conf_dir() == NULL;
    if (gethostname(hostname, sizeof(hostname) - 1) != 0) {
        hostname[0] = '\0';
    }
    if (sasl_server_init(callbacks, "memcached") != SASL_OK) {
        fprintf(stderr, "Error initializing sasl.\n");
        return -1;
    }
    log_info("Initialized SASL%s", pwdb_only ? " (PLAIN, password file)"
                                             : "");
    return 0;
}

bool sasl_cyrus(void)
{
    return true;
}

static sasl_conn_t *conn_of(void **state)
{
    if (*state == NULL) {
        sasl_conn_t *sc = NULL;
        if (sasl_server_new("memcached", NULL,
                            hostname[0] ? hostname : NULL, NULL, NULL,
                            NULL, 0, &sc) != SASL_OK) {
            log_info("Failed to initialize SASL conn.");
            return NULL;
        }
        /* No ANONYMOUS (memcached offers it when Cyrus has the plugin
         * and no mech_list: anyone "authenticates"), and no security
         * layer, which the protocol has no place for. */
        sasl_security_properties_t sp = {
            .min_ssf = 0, .max_ssf = 0, .maxbufsize = 0,
            .security_flags = SASL_SEC_NOANONYMOUS,
        };
        if (sasl_setprop(sc, SASL_SEC_PROPS, &sp) != SASL_OK) {
            log_info("Failed to set the SASL security properties.");
            sasl_dispose(&sc);
            return NULL;
        }
        *state = sc;
    }
    return *state;
}

int sasl_conn_mechs(void **state, const char **out, unsigned *outlen)
{
    sasl_conn_t *sc = conn_of(state);

    if (sc == NULL || sasl_listmech(sc, NULL, "", " ", "", out, outlen,
                                    NULL) != SASL_OK) {
        return -1;
    }
    return 0;
}

static enum sasl_result outcome(int rc)
{
    return rc == SASL_OK ? SASL_RES_OK
                         : rc == SASL_CONTINUE ? SASL_RES_CONTINUE
                                               : SASL_RES_FAIL;
}

enum sasl_result sasl_conn_start(void **state, const char *mech,
                                 size_t nmech, const char *data,
                                 unsigned len, const char **out,
                                 unsigned *outlen)
{
    char name[SASL_MECH_MAX + 1];
    sasl_conn_t *sc = conn_of(state);

    *out = NULL;
    *outlen = 0;
    if (sc == NULL || nmech > SASL_MECH_MAX) {
        return SASL_RES_FAIL;
    }
    memcpy(name, mech, nmech);
    name[nmech] = '\0';
    return outcome(sasl_server_start(sc, name, len ? data : NULL, len, out,
                                     outlen));
}

enum sasl_result sasl_conn_step(void **state, const char *data,
                                unsigned len, const char **out,
                                unsigned *outlen)
{
    sasl_conn_t *sc = conn_of(state);

    *out = NULL;
    *outlen = 0;
    if (sc == NULL) {
        return SASL_RES_FAIL;
    }
    return outcome(sasl_server_step(sc, data, len, out, outlen));
}

void sasl_conn_free(void **state)
{
    if (*state != NULL) {
        sasl_conn_t *sc = *state;
        sasl_dispose(&sc);
        *state = NULL;
    }
}

#else /* !ENABLE_SASL */

/*
 * No Cyrus SASL in this build: PLAIN only, "[authzid]\0user\0password"
 * checked against the password file, which must be given.  The state
 * only says that an AUTH without data is waiting for its STEP.
 */
static char pending_step;       /* *state when AUTH awaits a STEP */

int sasl_setup(void)
{
    if (settings.sasl_pwdb == NULL) {
        fprintf(stderr, "SASL: this build has no Cyrus SASL; give the "
                        "password file: -o sasl_pwdb=PATH or "
                        "MEMCACHED_SASL_PWDB\n");
        return -1;
    }
    if (access(settings.sasl_pwdb, R_OK) != 0) {
        fprintf(stderr, "SASL: cannot read the password file %s\n",
                settings.sasl_pwdb);
        return -1;
    }
    return 0;
}

bool sasl_cyrus(void)
{
    return false;
}

int sasl_conn_mechs(void **state, const char **out, unsigned *outlen)
{
    (void)state;
    *out = "PLAIN";
    *outlen = 5;
    return 0;
}

static enum sasl_result check_plain(const char *data, unsigned len)
{
    const char *user, *pass, *end = data + len;

    user = len > 0 ? memchr(data, '\0', len) : NULL;
    if (user == NULL) {
        return SASL_RES_FAIL;
    }
    user++;
    pass = memchr(user, '\0', (size_t)(end - user));
    if (pass == NULL) {
        return SASL_RES_FAIL;
    }
    return authfile_check_pwdb(settings.sasl_pwdb, user,
                               (size_t)(pass - user), pass + 1,
                               (size_t)(end - pass - 1))
               ? SASL_RES_OK : SASL_RES_FAIL;
}

enum sasl_result sasl_conn_start(void **state, const char *mech,
                                 size_t nmech, const char *data,
                                 unsigned len, const char **out,
                                 unsigned *outlen)
{
    *out = NULL;
    *outlen = 0;
    *state = NULL;
    if (nmech != 5 || strncasecmp(mech, "PLAIN", 5) != 0) {
        return SASL_RES_FAIL;
    }
    if (len == 0) {
        *state = &pending_step;
        return SASL_RES_CONTINUE;
    }
    return check_plain(data, len);
}

enum sasl_result sasl_conn_step(void **state, const char *data,
                                unsigned len, const char **out,
                                unsigned *outlen)
{
    bool waiting = *state == &pending_step;

    *out = NULL;
    *outlen = 0;
    *state = NULL;
    return waiting ? check_plain(data, len) : SASL_RES_FAIL;
}

void sasl_conn_free(void **state)
{
    *state = NULL;
}

#endif
