/*
 * tcp_blast: what loopback TCP carries on this machine, the ceiling of a remote copy over one
 * connection or several (docs/remote.md "Copies"). Sends MiB through STREAMS connections at
 * once (each a sender and a receiver thread), WRITE KiB per send, SO_SNDBUF/SO_RCVBUF BUF KiB
 * (0: the kernel's autotuning), MSG_ZEROCOPY on or off. Prints one JSON line.
 *
 *   tcp_blast MiB WRITE_KiB BUF_KiB ZEROCOPY STREAMS [SPAN]
 *
 * SPAN 0 (the default): each sender sends the same WRITE KiB buffer over and over and each
 * receiver receives into one such buffer, so both stay in the CPU's caches. SPAN 1: each
 * stream sends its share of the MiB out of one buffer of that size, and receives it into
 * another, every byte once, as a copy of that size does (a remote copy reads the user's
 * buffer and fills the staging ring or the user's buffer; neither is in cache). The buffers are
 * touched, and the whole transfer run once untimed, before the clock starts. SPAN 2: as 1, the
 * buffers on transparent huge pages (madvise), as the client's page-locked memory and the
 * worker's staging rings are (native/remote/net.c gsr_alloc_bulk).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
    char *span; /* SPAN 1: this stream's share, sent from or received into once */
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
    char *buf = l->span ? NULL : malloc(l->write_bytes);
    size_t got = 0;
    if (!l->span && !buf) l->failed = 1;
    while ((buf || l->span) && got < l->bytes) {
        size_t want = l->bytes - got < l->write_bytes ? l->bytes - got : l->write_bytes;
        ssize_t n = recv(l->fd, l->span ? l->span + got : buf, want, 0);
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
    char *buf = l->span ? NULL : malloc(l->write_bytes);
    int one = 1;
    if (!l->span && !buf) {
        l->failed = 1;
        return NULL;
    }
    if (buf) memset(buf, 1, l->write_bytes);
    if (l->zerocopy && setsockopt(l->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) != 0) l->zerocopy = 0;
    for (size_t sent = 0; sent < l->bytes;) {
        size_t n = l->bytes - sent < l->write_bytes ? l->bytes - sent : l->write_bytes;
        ssize_t s = send(l->fd, l->span ? l->span + sent : buf, n, l->zerocopy ? MSG_ZEROCOPY : 0);
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
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: tcp_blast MiB WRITE_KiB BUF_KiB ZEROCOPY STREAMS [SPAN]\n");
        return 2;
    }
    size_t total = (size_t)atol(argv[1]) << 20, write_bytes = (size_t)atol(argv[2]) << 10;
    int buf = atoi(argv[3]) * 1024, zerocopy = atoi(argv[4]), streams = atoi(argv[5]);
    int span = argc == 7 ? atoi(argv[6]) : 0;
    if (total == 0 || write_bytes == 0 || buf < 0 || streams < 1 || streams > MAX_STREAMS || span < 0 || span > 2) {
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
        tx[i] = (lane){c, total / (size_t)streams, write_bytes, zerocopy, 0, NULL};
        rx[i] = (lane){s, total / (size_t)streams, write_bytes, 0, 0, NULL};
    }
    char *from = NULL, *to = NULL;
    if (span) {
        size_t align = span == 2 ? (size_t)2 << 20 : 4096, size = (total + align - 1) / align * align;
        from = aligned_alloc(align, size);
        to = aligned_alloc(align, size);
        if (from && to && span == 2) {
            (void)madvise(from, size, MADV_HUGEPAGE);
            (void)madvise(to, size, MADV_HUGEPAGE);
        }
        if (!from || !to) {
            fprintf(stderr, "tcp_blast: no memory for two %zu MiB buffers\n", total >> 20);
            return 1;
        }
        memset(from, 1, total);
        memset(to, 2, total); /* not 0: malloc + memset 0 may become calloc, leaving the pages untouched */
        for (int i = 0; i < streams; i++) {
            tx[i].span = from + (size_t)i * tx[i].bytes;
            rx[i].span = to + (size_t)i * rx[i].bytes;
        }
    }
    pthread_t tt[MAX_STREAMS], tr[MAX_STREAMS];
    /* SPAN 1 runs the transfer twice and times the second: the first pass over freshly
     * faulted pages costs more than any later one (on the project's test VM, 7x), and a copy
     * benchmark's best round is never its first. */
    double t0 = 0;
    int failed = 0;
    for (int pass = span ? 0 : 1; pass < 2; pass++) {
        t0 = now_s();
        for (int i = 0; i < streams; i++) {
            pthread_create(&tr[i], NULL, receive, &rx[i]);
            pthread_create(&tt[i], NULL, send_all, &tx[i]);
        }
        for (int i = 0; i < streams; i++) {
            pthread_join(tt[i], NULL);
            pthread_join(tr[i], NULL);
            failed |= tx[i].failed | rx[i].failed;
        }
    }
    double seconds = now_s() - t0;
    printf("{\"mode\":\"tcp\",\"streams\":%d,\"write_kib\":%zu,\"buf_kib\":%d,\"zerocopy\":%d,\"span\":%d,\"gb_s\":%.2f,\"failed\":%d}\n", streams,
           write_bytes >> 10, buf / 1024, tx[0].zerocopy, span, (double)(total / (size_t)streams * (size_t)streams) / seconds / 1e9, failed);
    return failed;
}
