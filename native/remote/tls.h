/*
 * tls.h: TLS 1.3 on the remote data path (docs/remote.md "TLS"). The worker makes a fresh
 * Ed25519 key and a self-signed certificate per session; the client pins the certificate's
 * SHA-256, which reached it through the authenticated API. OpenSSL is loaded at run time
 * (tls.c), so the shipped binaries need it only when TLS is asked for.
 */
#ifndef GSR_TLS_H
#define GSR_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GSR_FINGERPRINT_BYTES 32

typedef struct gsr_tls_server gsr_tls_server; /* the worker's key, certificate and context */
typedef struct gsr_tls gsr_tls;               /* one connection's TLS state */

/* Functions that fail write one line saying why into why[cap] (no trailing newline). */

/* The worker's side: a fresh key pair and certificate; fingerprint gets its SHA-256 as 64
 * lowercase hex digits. NULL when OpenSSL is missing or refused. */
gsr_tls_server *gsr_tls_server_new(char fingerprint[2 * GSR_FINGERPRINT_BYTES + 1], char *why, size_t cap);
void gsr_tls_server_free(gsr_tls_server *srv);
/* Server handshake on a connected socket (its SO_RCVTIMEO bounds each wait). NULL on failure. */
gsr_tls *gsr_tls_accept(gsr_tls_server *srv, int fd, char *why, size_t cap);
/* Client handshake: TLS 1.3, then the worker's certificate must hash to pin; else NULL and
 * nothing was sent but the handshake itself. */
gsr_tls *gsr_tls_connect(int fd, const uint8_t pin[GSR_FINGERPRINT_BYTES], char *why, size_t cap);
/* Up to n decrypted bytes: > 0, or -1 with errno (ECONNRESET: closed; EAGAIN: the socket's
 * receive timeout passed; EPROTO: a TLS error). */
ssize_t gsr_tls_read(gsr_tls *t, void *buf, size_t n);
/* All n bytes, or -1 with errno. Never raises SIGPIPE. */
int gsr_tls_write(gsr_tls *t, const void *buf, size_t n);
/* Whether bytes are already buffered (decrypted or not): a poll on the socket would miss them. */
int gsr_tls_pending(gsr_tls *t);
void gsr_tls_free(gsr_tls *t);

#endif /* GSR_TLS_H */
