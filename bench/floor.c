/*
 * floor.c - what replicating a write costs at the least on this machine,
 * with no server involved: a sender process writes N records of
 * RECORD bytes over one loopback TCP connection, BATCH records per
 * send(2); a receiver process reads them in 256 KB reads and (with
 * STORE=1) copies each value to a random slot of an array as large as
 * the bench's data set, as a replica must.  Both print the CPU time
 * (user + system, getrusage) they spent per record.
 *
 * The sum is a floor for the pair's extra CPU per replicated set: the
 * real pair also formats, parses, hashes, locks and links items, and
 * keeps a backlog copy.  bench/README.md, "Replication", compares it
 * with the set-heavy figures.
 *
 *   cc -O2 -o bench/floor bench/floor.c
 *   taskset -c 0 bench/floor [N [BATCH [VALUE [STORE]]]]
 *   defaults: 1000000 records, 50 per send, 4096-byte values, STORE=1
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEADER 64               /* about a record line: "S key ... \r\n" */
#define SLOTS 100000            /* values of the array (the bench's keys) */
#define READ_BYTES (256 * 1024)

static double cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

static int receive(int ls, size_t value, int store)
{
    size_t rec = HEADER + value, have = 0;
    char *buf = malloc(READ_BYTES);
    char *slots = store ? malloc((size_t)SLOTS * value) : NULL;
    unsigned long long got = 0;
    uint32_t r = 1;
    double t0;
    int s = accept(ls, NULL, NULL);

    if (s < 0 || buf == NULL || rec > READ_BYTES || (store && !slots)) {
        perror("floor: receiver");
        return 1;
    }
    if (slots != NULL) {
        memset(slots, 1, (size_t)SLOTS * value);   /* fault it in first */
    }
    t0 = cpu_us();
    for (;;) {
        size_t off = 0;
        ssize_t n = read(s, buf + have, READ_BYTES - have);
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
        for (; have - off >= rec; off += rec, got++) {
            if (slots != NULL) {
                r = r * 1103515245u + 12345u;
                memcpy(slots + (size_t)(r % SLOTS) * value,
                       buf + off + HEADER, value);
            }
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    printf("receiver: %.3f us CPU per record (%llu records%s)\n",
           got ? (cpu_us() - t0) / (double)got : 0.0, got,
           store ? ", each value copied to a random slot" : "");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int batch = argc > 2 ? atoi(argv[2]) : 50;
    size_t value = argc > 3 ? (size_t)atol(argv[3]) : 4096;
    int store = argc > 4 ? atoi(argv[4]) : 1;
    size_t len = (HEADER + value) * (size_t)batch;
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int ls = socket(AF_INET, SOCK_STREAM, 0), s, status = 1;
    char *src;
    double t0;
    long i;
    pid_t pid;

    if (n <= 0 || batch <= 0 || value == 0) {
        fprintf(stderr, "usage: floor [N [BATCH [VALUE [STORE]]]]\n");
        return 2;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("floor: listen");
        return 1;
    }
    pid = fork();
    if (pid < 0) {
        perror("floor: fork");
        return 1;
    }
    if (pid == 0) {
        _exit(receive(ls, value, store));
    }
    s = socket(AF_INET, SOCK_STREAM, 0);
    src = malloc(len);
    if (s < 0 || src == NULL ||
        connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("floor: sender");
        kill(pid, SIGKILL);
        return 1;
    }
    memset(src, 'x', len);
    t0 = cpu_us();
    for (i = 0; i < n; i += batch) {
        size_t off = 0;
        while (off < len) {
            ssize_t k = send(s, src + off, len - off, 0);
            if (k <= 0) {
                perror("floor: send");
                kill(pid, SIGKILL);
                return 1;
            }
            off += (size_t)k;
        }
    }
    printf("sender: %.3f us CPU per record (%d records of %zu + %d bytes "
           "per send)\n", (cpu_us() - t0) / (double)((n + batch - 1) /
                                                     batch * batch),
           batch, value, HEADER);
    fflush(stdout);
    close(s);
    if (waitpid(pid, &status, 0) != pid) {
        return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
