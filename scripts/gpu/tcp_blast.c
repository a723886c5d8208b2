/*
 * tcp_blast: what loopback TCP carries on this machine, the ceiling of a remote copy over one
 * connection or several (docs/remote.md "Copies"). Sends MiB through STREAMS connections at
 * once (each a sender and a receiver thread), WRITE KiB per send, SO_SNDBUF/SO_RCVBUF BUF KiB
 * (0: the kernel's autotuning), MSG_ZEROCOPY on or off. Prints one JSON line.
 *
 *   tcp_blast MiB WRITE_KiB BUF_KiB ZEROCOPY STREAMS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#define MAX_STREAMS 16

typedef struct lane {
    int fd;
    size_t bytes, write_bytes;
    int zerocopy;
    int failed;
} lane;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Zerocopy completions come back on the error queue: read them so the socket's budget refills. */
static void reap(int fd) {
    char control[256];
    struct msghdr m = {.msg_control = control, .msg_controllen = sizeof control};
    while (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) > 0) m.msg_controllen = sizeof control;
}

static void *receive(void *arg) {
    lane *l = arg;
    char *buf = malloc(l->write_bytes);
    size_t got = 0;
    while (buf && got < l->bytes) {
        ssize_t n = recv(l->fd, buf, l->write_bytes, 0);
        if (n <= 0) {
            l->failed = 1;
            break;
        }
        got += (size_t)n;
    }
    free(buf);
    return NULL;
}

static void *send_all(void *arg) {
    lane *l = arg;
    char *buf = malloc(l->write_bytes);
    int one = 1;
    if (!buf) {
        l->failed = 1;
        return NULL;
    }
    memset(buf, 1, l->write_bytes);
    if (l->zerocopy && setsockopt(l->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) != 0) l->zerocopy = 0;
    for (size_t sent = 0; sent < l->bytes;) {
        size_t n = l->bytes - sent < l->write_bytes ? l->bytes - sent : l->write_bytes;
        ssize_t s = send(l->fd, buf, n, l->zerocopy ? MSG_ZEROCOPY : 0);
        if (s < 0 && errno == ENOBUFS) {
            reap(l->fd);
            continue;
        }
        if (s < 0) {
            l->failed = 1;
            break;
        }
        sent += (size_t)s;
        if (l->zerocopy) reap(l->fd);
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: tcp_blast MiB WRITE_KiB BUF_KiB ZEROCOPY STREAMS\n");
        return 2;
    }
    size_t total = (size_t)atol(argv[1]) << 20, write_bytes = (size_t)atol(argv[2]) << 10;
    int buf = atoi(argv[3]) * 1024, zerocopy = atoi(argv[4]), streams = atoi(argv[5]);
    if (total == 0 || write_bytes == 0 || buf < 0 || streams < 1 || streams > MAX_STREAMS) {
        fprintf(stderr, "tcp_blast: bad arguments\n");
        return 2;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, MAX_STREAMS) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
        perror("tcp_blast: listen");
        return 1;
    }
    lane tx[MAX_STREAMS], rx[MAX_STREAMS];
    for (int i = 0; i < streams; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (buf) (void)setsockopt(c, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0) {
            perror("tcp_blast: connect");
            return 1;
        }
        int s = accept(lfd, NULL, NULL);
        if (s < 0) {
            perror("tcp_blast: accept");
            return 1;
        }
        if (buf) (void)setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        tx[i] = (lane){c, total / (size_t)streams, write_bytes, zerocopy, 0};
        rx[i] = (lane){s, total / (size_t)streams, write_bytes, 0, 0};
    }
    pthread_t tt[MAX_STREAMS], tr[MAX_STREAMS];
    double t0 = now_s();
    for (int i = 0; i < streams; i++) {
        pthread_create(&tr[i], NULL, receive, &rx[i]);
        pthread_create(&tt[i], NULL, send_all, &tx[i]);
    }
    int failed = 0;
    for (int i = 0; i < streams; i++) {
        pthread_join(tt[i], NULL);
        pthread_join(tr[i], NULL);
        failed |= tx[i].failed | rx[i].failed;
    }
    double seconds = now_s() - t0;
    printf("{\"mode\":\"tcp\",\"streams\":%d,\"write_kib\":%zu,\"buf_kib\":%d,\"zerocopy\":%d,\"gb_s\":%.2f,\"failed\":%d}\n", streams,
           write_bytes >> 10, buf / 1024, tx[0].zerocopy, (double)(total / (size_t)streams * (size_t)streams) / seconds / 1e9, failed);
    return failed;
}
