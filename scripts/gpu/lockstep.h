// lockstep.h: the worker's side of scripts/gpu/lockstep.py's protocol, for C and C++ programs
// (bench_launch's lockstep mode). The coordinator starts the worker with LOCKSTEP_FDS="R,W": it
// reads requests from R ("go WORKLOAD" or "stop", one a line) and writes one JSON line to W per
// request. The worker sends {"ready": true} once warmed up, then one repetition's metrics per
// "go". Header-only (static functions); no allocation.
#pragma once
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int rfd, wfd;
    char buf[256];
    size_t len;  // bytes in buf not yet consumed
} lockstep_conn;

// Reads LOCKSTEP_FDS. 0 on success, -1 (with a message on stderr) when it is missing or malformed.
static int lockstep_open(lockstep_conn *c) {
    const char *fds = getenv("LOCKSTEP_FDS");
    char *end = NULL;
    memset(c, 0, sizeof *c);
    if (fds == NULL) {
        fprintf(stderr, "lockstep: LOCKSTEP_FDS is not set\n");
        return -1;
    }
    long r = strtol(fds, &end, 10), w = -1;
    if (end != fds && *end == ',') {
        const char *second = end + 1;
        w = strtol(second, &end, 10);
        if (end == second || *end != '\0') w = -1;
    }
    if (r < 0 || w < 0 || r > 1 << 20 || w > 1 << 20) {
        fprintf(stderr, "lockstep: LOCKSTEP_FDS must be READ_FD,WRITE_FD, not '%s'\n", fds);
        return -1;
    }
    c->rfd = (int)r;
    c->wfd = (int)w;
    return 0;
}

// Writes one line (text without its newline). 0 on success, -1 when the coordinator is gone.
static int lockstep_send(lockstep_conn *c, const char *text) {
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", text);
    if (n < 0 || (size_t)n >= sizeof line) return -1;
    for (int off = 0; off < n;) {
        ssize_t k = write(c->wfd, line + off, (size_t)(n - off));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        off += (int)k;
    }
    return 0;
}

// Waits for the next request. 1: "go" (its workload name copied into workload, at most size - 1
// bytes); 0: "stop" or the pipe closed; -1: a line it does not understand or too long.
static int lockstep_next(lockstep_conn *c, char *workload, size_t size) {
    for (;;) {
        char *nl = (char *)memchr(c->buf, '\n', c->len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - c->buf);
            int rc = -1;
            *nl = '\0';
            if (strcmp(c->buf, "stop") == 0) {
                rc = 0;
            } else if (strncmp(c->buf, "go ", 3) == 0 && n - 3 > 0 && n - 3 < size) {
                memcpy(workload, c->buf + 3, n - 2);  // with its terminating '\0'
                rc = 1;
            }
            c->len -= n + 1;
            memmove(c->buf, nl + 1, c->len);
            return rc;
        }
        if (c->len == sizeof c->buf) return -1;
        ssize_t k = read(c->rfd, c->buf + c->len, sizeof c->buf - c->len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) return 0;
        c->len += (size_t)k;
    }
}
