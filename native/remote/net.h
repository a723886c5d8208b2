/*
 * net.h: the socket side of the remote protocol, shared by the worker and the client:
 * whole-frame reads and writes over a link (a connected TCP socket, plaintext or TLS), the
 * link options both ends set (docs/remote.md "Link loss"), address parsing, and the hex
 * forms of the session key and the certificate pin.
 */
#ifndef GSR_NET_H
#define GSR_NET_H

#include "compress.h"
#include "proto.h"
#include "tls.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One end of a session's connection: the socket, and its TLS state when it has one (then
 * every byte goes through it). */
typedef struct gsr_link {
    int fd;
    gsr_tls *tls;
} gsr_link;

/* At most n bytes, one recv (or one TLS read): > 0, or -1 with errno (closed: ECONNRESET). */
ssize_t gsr_link_recv(gsr_link *l, void *buf, size_t n);
/* Whether received bytes wait inside the link, where a poll on its socket cannot see them. */
int gsr_link_pending(gsr_link *l);
/* Frees the TLS state and closes the socket; the link is then {-1, NULL}. */
void gsr_link_close(gsr_link *l);
/* Returns 0, or -1 with errno set (EPIPE/ECONNRESET/ETIMEDOUT..., 0-byte read: ECONNRESET). */
int gsr_read_full(gsr_link *l, void *buf, size_t n);
int gsr_write_full(gsr_link *l, const void *buf, size_t n);
/* One frame: header + up to two payload pieces (either may be NULL/0), in one writev (TLS:
 * one record when it fits in one). */
int gsr_send_frame(gsr_link *l, const gsr_header *h, const void *a, size_t an, const void *b, size_t bn);
/* Reads a header and validates it (gsr_header_decode); -1 on I/O error, else the gsr_error. */
int gsr_recv_header(gsr_link *l, gsr_header *h);
/* TCP_NODELAY, keepalive (idle 5 s, interval 1 s, 5 probes), TCP_USER_TIMEOUT 10 s. */
void gsr_set_link_options(int fd);
/* "host:port" (host may be [v6]) -> a connected socket, or -1 with errno. */
int gsr_connect(const char *endpoint);
/* A listening socket on "host:port" (port 0: any); *port gets the bound port. */
int gsr_listen(const char *endpoint, unsigned *port);
/* 64 hex digits -> 32 bytes; 0 on success, -1 on anything else. */
int gsr_key_from_hex(const char *hex, uint8_t key[GSR_KEY_BYTES]);
/* A certificate pin: 64 hex digits, colons allowed, any case -> 32 bytes; 0 or -1. */
int gsr_fingerprint_from_hex(const char *hex, uint8_t out[GSR_FINGERPRINT_BYTES]);
/* n random bytes from the kernel: 0, or -1. */
int gsr_random(void *buf, size_t n);
/* Constant-time comparison of n bytes: 1 when equal. */
int gsr_equal_ct(const uint8_t *a, const uint8_t *b, size_t n);

/* Memory that copies go through in bulk (the worker's staging rings, the client's page-locked
 * host memory): page-aligned n bytes (rounded up to a page), or NULL; free() frees it. From
 * 2 MiB up it is 2 MiB-aligned and asked for transparent huge pages (madvise, best effort):
 * every socket copy into or out of it then walks one page-table entry per 2 MiB instead of
 * one per 4 KiB (docs/remote.md "Bulk lanes": on this project's test VM a 1 GiB loopback
 * transfer out of 4 KiB pages ran at a tenth of the same out of huge pages). *rounded gets
 * the size allocated (NULL: not wanted). */
void *gsr_alloc_bulk(size_t n, size_t *rounded);

/* Compressed copies (docs/remote.md "Compression"). One chunk of a copy as a DATA frame (flags:
 * REPLY and MORE as the direction needs), compressed with p's codec when it has one and it
 * pays, else raw: 0, or -1 (link). */
int gsr_send_chunk(gsr_link *l, gsr_packer *p, uint16_t flags, const uint8_t *data, size_t n);
/* A compressed DATA frame's payload (its header d) read from l into p's scratch and decompressed
 * into exactly n bytes at dst: 0, or -1 (link; no codec granted; the frame over max; a declared
 * length other than n, or bytes that do not decompress to exactly it). */
int gsr_recv_packed(gsr_link *l, gsr_packer *p, const gsr_header *d, size_t max, uint8_t *dst, size_t n);

#endif /* GSR_NET_H */
