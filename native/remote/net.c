/* net.c: socket helpers of the remote protocol (net.h). */
#define _DEFAULT_SOURCE
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t gsr_link_recv(gsr_link *l, void *buf, size_t n) {
    if (l->tls) return gsr_tls_read(l->tls, buf, n);
    for (;;) {
        ssize_t got = recv(l->fd, buf, n, 0);
        if (got > 0) return got;
        if (got < 0 && errno == EINTR) continue;
        if (got == 0) errno = ECONNRESET; /* the peer closed mid-frame or between frames */
        return -1;
    }
}

int gsr_link_pending(gsr_link *l) { return l->tls ? gsr_tls_pending(l->tls) : 0; }

void gsr_link_close(gsr_link *l) {
    gsr_tls_free(l->tls);
    if (l->fd >= 0) close(l->fd);
    *l = (gsr_link){-1, NULL};
}

int gsr_read_full(gsr_link *l, void *buf, size_t n) {
    uint8_t *p = buf;
    for (size_t done = 0; done < n;) {
        ssize_t got = gsr_link_recv(l, p + done, n - done);
        if (got < 0) return -1;
        done += (size_t)got;
    }
    return 0;
}

int gsr_write_full(gsr_link *l, const void *buf, size_t n) {
    return gsr_send_frame(l, NULL, buf, n, NULL, 0);
}

/* TLS has no writev: a frame that fits one record goes as one (one syscall, one record's
 * overhead); a larger one piece by piece (a copy's chunk straight from the caller's memory). */
#define TLS_COALESCE_BYTES 16384u

static int send_frame_tls(gsr_tls *t, const uint8_t *hb, size_t hn, const void *a, size_t an, const void *b, size_t bn) {
    if (hn + an + bn <= TLS_COALESCE_BYTES) {
        uint8_t one[TLS_COALESCE_BYTES];
        memcpy(one, hb, hn);
        if (an) memcpy(one + hn, a, an);
        if (bn) memcpy(one + hn + an, b, bn);
        return gsr_tls_write(t, one, hn + an + bn);
    }
    if (hn && gsr_tls_write(t, hb, hn) != 0) return -1;
    if (an && gsr_tls_write(t, a, an) != 0) return -1;
    return bn ? gsr_tls_write(t, b, bn) : 0;
}

int gsr_send_frame(gsr_link *l, const gsr_header *h, const void *a, size_t an, const void *b, size_t bn) {
    uint8_t hb[GSR_HEADER_BYTES];
    if (l->tls) {
        if (h) gsr_header_encode(h, hb);
        return send_frame_tls(l->tls, hb, h ? sizeof hb : 0, a, an, b, bn);
    }
    struct iovec iov[3];
    int n = 0;
    if (h) {
        gsr_header_encode(h, hb);
        iov[n++] = (struct iovec){hb, sizeof hb};
    }
    if (an) iov[n++] = (struct iovec){(void *)a, an};
    if (bn) iov[n++] = (struct iovec){(void *)b, bn};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    int i = 0;
    while (i < n) {
        msg.msg_iov = iov + i;
        msg.msg_iovlen = (size_t)(n - i);
        ssize_t sent = sendmsg(l->fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        size_t left = (size_t)sent;
        while (i < n && left >= iov[i].iov_len) left -= iov[i++].iov_len;
        if (i < n) {
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + left;
            iov[i].iov_len -= left;
        }
    }
    return 0;
}

int gsr_recv_header(gsr_link *l, gsr_header *h) {
    uint8_t hb[GSR_HEADER_BYTES];
    if (gsr_read_full(l, hb, sizeof hb) != 0) return -1;
    return (int)gsr_header_decode(hb, h);
}

void gsr_set_link_options(int fd) {
    /* Best effort: a socket that refuses an option still works, only notices loss later. */
    int one = 1, idle = 5, intvl = 1, cnt = 5;
    unsigned timeout_ms = 10000;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof timeout_ms);
}

/* Splits "host:port" / "[v6]:port" into its parts (host may be empty: any/loopback). */
static int split_endpoint(const char *endpoint, char *host, size_t host_cap, char *port, size_t port_cap) {
    const char *colon;
    const char *h = endpoint;
    size_t hl;
    if (endpoint[0] == '[') {
        const char *close = strchr(endpoint, ']');
        if (!close || close[1] != ':') return -1;
        h = endpoint + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(endpoint, ':');
        if (!colon) return -1;
        hl = (size_t)(colon - endpoint);
    }
    if (hl >= host_cap || strlen(colon + 1) >= port_cap || colon[1] == '\0') return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

static struct addrinfo *resolve(const char *endpoint, int passive) {
    char host[256], port[16];
    if (split_endpoint(endpoint, host, sizeof host, port, sizeof port) != 0) {
        errno = EINVAL;
        return NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0) {
        errno = EHOSTUNREACH;
        return NULL;
    }
    return res;
}

int gsr_connect(const char *endpoint) {
    struct addrinfo *res = resolve(endpoint, 0);
    if (!res) return -1;
    int fd = -1, err = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err;
        return -1;
    }
    gsr_set_link_options(fd);
    return fd;
}

int gsr_listen(const char *endpoint, unsigned *port) {
    struct addrinfo *res = resolve(endpoint, 1);
    if (!res) return -1;
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    int one = 1;
    if (fd >= 0) (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        errno = err;
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        if (ss.ss_family == AF_INET6) *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

#define HUGE_PAGE_BYTES ((size_t)2 << 20)

void *gsr_alloc_bulk(size_t n, size_t *rounded) {
    size_t align = n >= HUGE_PAGE_BYTES ? HUGE_PAGE_BYTES : 4096;
    if (n == 0 || n > SIZE_MAX - align) return NULL;
    size_t size = (n + align - 1) / align * align;
    void *p = aligned_alloc(align, size);
#ifdef MADV_HUGEPAGE
    if (p && align == HUGE_PAGE_BYTES) (void)madvise(p, size, MADV_HUGEPAGE); /* refused or THP off: 4 KiB pages, as before */
#endif
    if (p && rounded) *rounded = size;
    return p;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int gsr_key_from_hex(const char *hex, uint8_t key[GSR_KEY_BYTES]) {
    if (!hex || strlen(hex) != 2 * GSR_KEY_BYTES) return -1;
    for (unsigned i = 0; i < GSR_KEY_BYTES; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int gsr_fingerprint_from_hex(const char *hex, uint8_t out[GSR_FINGERPRINT_BYTES]) {
    size_t got = 0;
    if (!hex) return -1;
    for (const char *c = hex; *c; c++) {
        if (*c == ':') continue;
        int hi = hex_digit(c[0]), lo = c[1] ? hex_digit(c[1]) : -1;
        if (hi < 0 || lo < 0 || got == GSR_FINGERPRINT_BYTES) return -1;
        out[got++] = (uint8_t)(hi << 4 | lo);
        c++;
    }
    return got == GSR_FINGERPRINT_BYTES ? 0 : -1;
}

int gsr_equal_ct(const uint8_t *a, const uint8_t *b, size_t n) {
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++) diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

int gsr_random(void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int gsr_recv_packed(gsr_link *l, gsr_packer *p, const gsr_header *d, size_t max, uint8_t *dst, size_t n) {
    if (p->codec == GSR_CODEC_NONE || d->length == 0 || d->length > max || d->length > p->cap) return -1;
    if (gsr_read_full(l, p->buf, d->length) != 0) return -1;
    return gsr_unpack(p, p->buf, d->length, dst, n);
}

int gsr_send_chunk(gsr_link *l, gsr_packer *p, uint16_t flags, const uint8_t *data, size_t n) {
    size_t m = p->codec != GSR_CODEC_NONE ? gsr_pack(p, data, n) : 0;
    if (m > 0) {
        gsr_header d = {(uint32_t)m, GSR_OP_DATA, (uint16_t)(flags | GSR_FLAG_COMPRESSED), 0, 0, 0};
        return gsr_send_frame(l, &d, p->buf, m, NULL, 0);
    }
    gsr_header d = {(uint32_t)n, GSR_OP_DATA, flags, 0, 0, 0};
    return gsr_send_frame(l, &d, data, n, NULL, 0);
}
