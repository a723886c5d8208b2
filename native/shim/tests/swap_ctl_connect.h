/*
 * swap_ctl_connect.h: a test's connection to a process's swap control socket
 * ($GPUSHARE_SWAP/<pid>.sock, SWAP.md), made as the daemon makes it: retried every 10 ms, `tries`
 * times, while the library's listener comes up in that process; and the two readings of its
 * one-line JSON answers the tests make. Include after test_check.h.
 */
#ifndef SWAP_CTL_CONNECT_H
#define SWAP_CTL_CONNECT_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

static int swap_ctl_connect(pid_t pid, int tries)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/%d.sock", getenv("GPUSHARE_SWAP"), (int)pid);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    for (int i = 0; i < tries; i++) {
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
        usleep(10000);
    }
    check(0, "connect to %s: %s", a.sun_path, strerror(errno));
    close(fd);
    return -1;
}

/* The next line on fd within ms (-1: no limit; empty: the connection closed or nothing came). */
static inline void swap_ctl_hear(int fd, char *out, size_t len, int ms)
{
    size_t have = 0;
    out[0] = '\0';
    while (have + 1 < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ms) <= 0)
            break;
        ssize_t n = recv(fd, out + have, len - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        if (memchr(out, '\n', have))
            break;
    }
    out[have] = '\0';
}

/* The answer holds `part` (a key and its value, as the library writes them). */
static inline bool has(const char *answer, const char *part)
{
    return strstr(answer, part) != NULL;
}

/* The unsigned number after "name": in the answer, or ~0 where it has none. */
static inline unsigned long long field(const char *answer, const char *name)
{
    char key[40];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(answer, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : ~0ull;
}

#endif
