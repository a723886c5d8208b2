/*
 * tls.c: TLS 1.3 on the remote data path through OpenSSL loaded at run time (tls.h). The
 * binaries are built for glibc 2.28 and must load on hosts without OpenSSL 3 (compat/ship.mk):
 * linking libssl would tie them to one soname, so the few functions used are declared here and
 * looked up in libssl.so.3, else libssl.so.1.1 (every one of them exists in both, but the peer
 * certificate's getter, renamed in 3.0). OpenSSL's types stay opaque (void *).
 */
#define _GNU_SOURCE
#include "tls.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenSSL's constants used here (ssl.h, obj_mac.h, asn1.h: stable ABI values). */
enum {
    OSSL_NID_ED25519 = 1087,
    OSSL_MBSTRING_ASC = 0x1001,
    OSSL_TLS1_3_VERSION = 0x0304,
    OSSL_CTRL_MODE = 33,
    OSSL_CTRL_SET_READ_AHEAD = 41,
    OSSL_CTRL_SET_MIN_PROTO = 123,
    OSSL_CTRL_SET_MAX_PROTO = 124,
    OSSL_MODE_AUTO_RETRY = 4,
    OSSL_VERIFY_NONE = 0,
    OSSL_ERROR_SSL = 1,
    OSSL_ERROR_WANT_READ = 2,
    OSSL_ERROR_WANT_WRITE = 3,
    OSSL_ERROR_SYSCALL = 5,
    OSSL_ERROR_ZERO_RETURN = 6,
};

/* The declared subset, resolved once per process. */
typedef struct ossl_api {
    const void *(*TLS_server_method)(void);
    const void *(*TLS_client_method)(void);
    void *(*SSL_CTX_new)(const void *method);
    void (*SSL_CTX_free)(void *ctx);
    long (*SSL_CTX_ctrl)(void *ctx, int cmd, long larg, void *parg);
    int (*SSL_CTX_use_certificate)(void *ctx, void *x509);
    int (*SSL_CTX_use_PrivateKey)(void *ctx, void *pkey);
    void (*SSL_CTX_set_verify)(void *ctx, int mode, void *callback);
    int (*SSL_CTX_set_num_tickets)(void *ctx, size_t n);
    void *(*SSL_new)(void *ctx);
    void (*SSL_free)(void *ssl);
    int (*SSL_set_fd)(void *ssl, int fd);
    int (*SSL_accept)(void *ssl);
    int (*SSL_connect)(void *ssl);
    int (*SSL_read)(void *ssl, void *buf, int n);
    int (*SSL_write)(void *ssl, const void *buf, int n);
    int (*SSL_get_error)(const void *ssl, int ret);
    int (*SSL_has_pending)(const void *ssl);
    void *(*SSL_get1_peer_certificate)(const void *ssl);
    void *(*EVP_PKEY_CTX_new_id)(int id, void *engine);
    int (*EVP_PKEY_keygen_init)(void *pctx);
    int (*EVP_PKEY_keygen)(void *pctx, void **pkey);
    void (*EVP_PKEY_CTX_free)(void *pctx);
    void (*EVP_PKEY_free)(void *pkey);
    const void *(*EVP_sha256)(void);
    void *(*X509_new)(void);
    void (*X509_free)(void *x);
    int (*X509_set_version)(void *x, long version);
    void *(*X509_get_serialNumber)(void *x);
    int (*ASN1_INTEGER_set)(void *a, long v);
    void *(*X509_getm_notBefore)(const void *x);
    void *(*X509_getm_notAfter)(const void *x);
    void *(*X509_gmtime_adj)(void *t, long seconds);
    int (*X509_set_pubkey)(void *x, void *pkey);
    void *(*X509_get_subject_name)(const void *x);
    int (*X509_NAME_add_entry_by_txt)(void *name, const char *field, int type, const unsigned char *bytes, int len, int loc, int set);
    int (*X509_set_issuer_name)(void *x, const void *name);
    int (*X509_sign)(void *x, void *pkey, const void *md);
    int (*X509_digest)(const void *x, const void *md, unsigned char *out, unsigned *len);
    unsigned long (*ERR_get_error)(void);
    unsigned long (*ERR_peek_error)(void);
    void (*ERR_error_string_n)(unsigned long e, char *buf, size_t len);
    void (*ERR_clear_error)(void);
} ossl_api;

/* Process-wide, written once under pthread_once: OpenSSL's libraries are loaded for the
 * whole process, and the client library's threads share its one connection. */
static ossl_api ossl;
static char ossl_problem[256];
static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;

static void *find(void *ssl_lib, void *crypto_lib, const char *name) {
    void *p = dlsym(ssl_lib, name);
    return p ? p : dlsym(crypto_lib, name);
}

static void load(void) {
    static const char *const pairs[][2] = {{"libssl.so.3", "libcrypto.so.3"}, {"libssl.so.1.1", "libcrypto.so.1.1"}};
    void *ssl_lib = NULL, *crypto_lib = NULL;
    const char *first_error = NULL;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0] && !ssl_lib; i++) {
        crypto_lib = dlopen(pairs[i][1], RTLD_NOW | RTLD_LOCAL);
        ssl_lib = crypto_lib ? dlopen(pairs[i][0], RTLD_NOW | RTLD_LOCAL) : NULL;
        if (!ssl_lib) {
            const char *e = dlerror();
            if (!first_error) first_error = e ? e : pairs[i][0];
            if (crypto_lib) dlclose(crypto_lib);
            crypto_lib = NULL;
        }
    }
    if (!ssl_lib) {
        snprintf(ossl_problem, sizeof ossl_problem, "TLS needs OpenSSL (libssl.so.3 or libssl.so.1.1): %s", first_error);
        return;
    }
    /* Name and slot side by side: a missing name is reported as such. */
    struct { const char *name; void **slot; } table[] = {
#define GSR_SLOT(n) {#n, (void **)&ossl.n}
        GSR_SLOT(TLS_server_method), GSR_SLOT(TLS_client_method), GSR_SLOT(SSL_CTX_new), GSR_SLOT(SSL_CTX_free),
        GSR_SLOT(SSL_CTX_ctrl), GSR_SLOT(SSL_CTX_use_certificate), GSR_SLOT(SSL_CTX_use_PrivateKey),
        GSR_SLOT(SSL_CTX_set_verify), GSR_SLOT(SSL_CTX_set_num_tickets), GSR_SLOT(SSL_new), GSR_SLOT(SSL_free),
        GSR_SLOT(SSL_set_fd), GSR_SLOT(SSL_accept), GSR_SLOT(SSL_connect), GSR_SLOT(SSL_read), GSR_SLOT(SSL_write),
        GSR_SLOT(SSL_get_error), GSR_SLOT(SSL_has_pending), GSR_SLOT(EVP_PKEY_CTX_new_id), GSR_SLOT(EVP_PKEY_keygen_init),
        GSR_SLOT(EVP_PKEY_keygen), GSR_SLOT(EVP_PKEY_CTX_free), GSR_SLOT(EVP_PKEY_free), GSR_SLOT(EVP_sha256),
        GSR_SLOT(X509_new), GSR_SLOT(X509_free), GSR_SLOT(X509_set_version), GSR_SLOT(X509_get_serialNumber),
        GSR_SLOT(ASN1_INTEGER_set), GSR_SLOT(X509_getm_notBefore), GSR_SLOT(X509_getm_notAfter),
        GSR_SLOT(X509_gmtime_adj), GSR_SLOT(X509_set_pubkey), GSR_SLOT(X509_get_subject_name),
        GSR_SLOT(X509_NAME_add_entry_by_txt), GSR_SLOT(X509_set_issuer_name), GSR_SLOT(X509_sign),
        GSR_SLOT(X509_digest), GSR_SLOT(ERR_get_error), GSR_SLOT(ERR_peek_error), GSR_SLOT(ERR_error_string_n), GSR_SLOT(ERR_clear_error),
#undef GSR_SLOT
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        *table[i].slot = find(ssl_lib, crypto_lib, table[i].name);
        if (!*table[i].slot) {
            snprintf(ossl_problem, sizeof ossl_problem, "TLS: this OpenSSL lacks %s", table[i].name);
            return;
        }
    }
    /* Renamed in 3.0; the 1.1 name is the same function (it takes a reference too). */
    *(void **)&ossl.SSL_get1_peer_certificate = find(ssl_lib, crypto_lib, "SSL_get1_peer_certificate");
    if (!ossl.SSL_get1_peer_certificate) *(void **)&ossl.SSL_get1_peer_certificate = find(ssl_lib, crypto_lib, "SSL_get_peer_certificate");
    if (!ossl.SSL_get1_peer_certificate) snprintf(ossl_problem, sizeof ossl_problem, "TLS: this OpenSSL lacks SSL_get1_peer_certificate");
}

/* 0 when OpenSSL is usable, else -1 and why. */
static int loaded(char *why, size_t cap) {
    pthread_once(&ossl_once, load);
    if (!ossl_problem[0]) return 0;
    snprintf(why, cap, "%s", ossl_problem);
    return -1;
}

/* OpenSSL's first queued error after `what`, then the queue cleared. */
static void say_ssl(char *why, size_t cap, const char *what) {
    unsigned long e = ossl.ERR_get_error();
    char text[200] = "no detail";
    if (e) ossl.ERR_error_string_n(e, text, sizeof text);
    ossl.ERR_clear_error();
    snprintf(why, cap, "TLS: %s (%s)", what, text);
}

struct gsr_tls_server {
    void *ctx;
};

struct gsr_tls {
    void *ssl;
    void *ctx; /* the client's own context; NULL for the worker's (its server owns it) */
};

/* A context that speaks TLS 1.3 only. */
static void *new_context(const void *method) {
    void *ctx = ossl.SSL_CTX_new(method);
    if (!ctx) return NULL;
    if (ossl.SSL_CTX_ctrl(ctx, OSSL_CTRL_SET_MIN_PROTO, OSSL_TLS1_3_VERSION, NULL) != 1 ||
        ossl.SSL_CTX_ctrl(ctx, OSSL_CTRL_SET_MAX_PROTO, OSSL_TLS1_3_VERSION, NULL) != 1) {
        ossl.SSL_CTX_free(ctx);
        return NULL;
    }
    (void)ossl.SSL_CTX_ctrl(ctx, OSSL_CTRL_MODE, OSSL_MODE_AUTO_RETRY, NULL);
    /* A batch of small frames in one recv, as on the plaintext path (gsr_tls_pending). */
    (void)ossl.SSL_CTX_ctrl(ctx, OSSL_CTRL_SET_READ_AHEAD, 1, NULL);
    return ctx;
}

static void to_hex(const uint8_t *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

/* A self-signed certificate for pkey; NULL on failure. */
static void *self_signed(void *pkey) {
    void *x = ossl.X509_new();
    if (!x) return NULL;
    void *name = ossl.X509_get_subject_name(x);
    const long ten_years = 10L * 366 * 86400;
    int ok = ossl.X509_set_version(x, 2) == 1 && ossl.ASN1_INTEGER_set(ossl.X509_get_serialNumber(x), (long)time(NULL)) == 1 &&
             ossl.X509_gmtime_adj(ossl.X509_getm_notBefore(x), -86400) && ossl.X509_gmtime_adj(ossl.X509_getm_notAfter(x), ten_years) &&
             ossl.X509_set_pubkey(x, pkey) == 1 && name &&
             ossl.X509_NAME_add_entry_by_txt(name, "CN", OSSL_MBSTRING_ASC, (const unsigned char *)"gpushare-remote-worker", -1, -1, 0) == 1 &&
             ossl.X509_set_issuer_name(x, name) == 1 && ossl.X509_sign(x, pkey, NULL) > 0; /* Ed25519: no separate digest */
    if (ok) return x;
    ossl.X509_free(x);
    return NULL;
}

static int fingerprint_of(const void *x, uint8_t out[GSR_FINGERPRINT_BYTES]) {
    unsigned len = 0;
    return ossl.X509_digest(x, ossl.EVP_sha256(), out, &len) == 1 && len == GSR_FINGERPRINT_BYTES ? 0 : -1;
}

gsr_tls_server *gsr_tls_server_new(char fingerprint[2 * GSR_FINGERPRINT_BYTES + 1], char *why, size_t cap) {
    if (loaded(why, cap) != 0) return NULL;
    void *pctx = ossl.EVP_PKEY_CTX_new_id(OSSL_NID_ED25519, NULL);
    void *pkey = NULL, *x = NULL, *ctx = NULL;
    uint8_t fp[GSR_FINGERPRINT_BYTES];
    gsr_tls_server *srv = NULL;
    if (!pctx || ossl.EVP_PKEY_keygen_init(pctx) != 1 || ossl.EVP_PKEY_keygen(pctx, &pkey) != 1)
        say_ssl(why, cap, "cannot make an Ed25519 key");
    else if (!(x = self_signed(pkey)) || fingerprint_of(x, fp) != 0)
        say_ssl(why, cap, "cannot make the worker's certificate");
    else if (!(ctx = new_context(ossl.TLS_server_method())) || ossl.SSL_CTX_use_certificate(ctx, x) != 1 ||
             ossl.SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || ossl.SSL_CTX_set_num_tickets(ctx, 0) != 1)
        say_ssl(why, cap, "cannot set up the server context");
    else if (!(srv = malloc(sizeof *srv)))
        snprintf(why, cap, "TLS: out of memory");
    if (srv) {
        srv->ctx = ctx;
        to_hex(fp, sizeof fp, fingerprint);
    } else if (ctx) {
        ossl.SSL_CTX_free(ctx);
    }
    /* The context holds its own references to the certificate and the key. */
    if (x) ossl.X509_free(x);
    if (pkey) ossl.EVP_PKEY_free(pkey);
    if (pctx) ossl.EVP_PKEY_CTX_free(pctx);
    return srv;
}

void gsr_tls_server_free(gsr_tls_server *srv) {
    if (!srv) return;
    ossl.SSL_CTX_free(srv->ctx);
    free(srv);
}

static gsr_tls *wrap(void *ctx, void *own_ctx, int fd) {
    gsr_tls *t = malloc(sizeof *t);
    void *ssl = t ? ossl.SSL_new(ctx) : NULL;
    if (!ssl || ossl.SSL_set_fd(ssl, fd) != 1) {
        if (ssl) ossl.SSL_free(ssl);
        free(t);
        return NULL;
    }
    t->ssl = ssl;
    t->ctx = own_ctx;
    return t;
}

/* OpenSSL 3 reports a peer gone mid-handshake as a protocol error; its reason says so
 * (SSL_R_UNEXPECTED_EOF_WHILE_READING, the low 23 bits of the queued error). */
static int left_early(void) {
    if ((ossl.ERR_peek_error() & 0x7FFFFFUL) != 294) return 0;
    ossl.ERR_clear_error();
    return 1;
}

gsr_tls *gsr_tls_accept(gsr_tls_server *srv, int fd, char *why, size_t cap) {
    gsr_tls *t = wrap(srv->ctx, NULL, fd);
    if (!t) {
        say_ssl(why, cap, "cannot start a connection");
        return NULL;
    }
    int rc = ossl.SSL_accept(t->ssl);
    if (rc == 1) return t;
    int e = ossl.SSL_get_error(t->ssl, rc);
    if (e == OSSL_ERROR_WANT_READ || e == OSSL_ERROR_WANT_WRITE)
        snprintf(why, cap, "TLS: the client's handshake did not come in time");
    else if (e == OSSL_ERROR_SYSCALL || (e == OSSL_ERROR_SSL && left_early()))
        snprintf(why, cap, "TLS: the client left during the handshake (%s)", errno ? strerror(errno) : "end of stream");
    else
        say_ssl(why, cap, "handshake failed (not TLS 1.3, or not TLS at all)");
    gsr_tls_free(t);
    return NULL;
}

gsr_tls *gsr_tls_connect(int fd, const uint8_t pin[GSR_FINGERPRINT_BYTES], char *why, size_t cap) {
    if (loaded(why, cap) != 0) return NULL;
    void *ctx = new_context(ossl.TLS_client_method());
    if (!ctx) {
        say_ssl(why, cap, "cannot set up the client context");
        return NULL;
    }
    /* No CA, name or date checks: the pin below is the whole of the trust (docs/remote.md). */
    ossl.SSL_CTX_set_verify(ctx, OSSL_VERIFY_NONE, NULL);
    gsr_tls *t = wrap(ctx, ctx, fd);
    if (!t) {
        say_ssl(why, cap, "cannot start a connection");
        ossl.SSL_CTX_free(ctx);
        return NULL;
    }
    int rc = ossl.SSL_connect(t->ssl);
    if (rc != 1) {
        int e = ossl.SSL_get_error(t->ssl, rc);
        if (e == OSSL_ERROR_SYSCALL)
            snprintf(why, cap, "TLS: the worker closed during the handshake (%s): is it a TLS session?", errno ? strerror(errno) : "end of stream");
        else
            say_ssl(why, cap, "handshake with the worker failed (is it a TLS session?)");
        gsr_tls_free(t);
        return NULL;
    }
    void *cert = ossl.SSL_get1_peer_certificate(t->ssl);
    uint8_t fp[GSR_FINGERPRINT_BYTES];
    int same = 0;
    if (cert && fingerprint_of(cert, fp) == 0) {
        uint8_t diff = 0;
        for (size_t i = 0; i < sizeof fp; i++) diff |= (uint8_t)(fp[i] ^ pin[i]);
        same = diff == 0;
    }
    if (cert) ossl.X509_free(cert);
    if (!same) {
        snprintf(why, cap, "TLS: the worker's certificate is not the pinned one (GPUSHARE_REMOTE_TLS_SHA256)");
        gsr_tls_free(t);
        return NULL;
    }
    return t;
}

ssize_t gsr_tls_read(gsr_tls *t, void *buf, size_t n) {
    int want = n > 1u << 30 ? 1 << 30 : (int)n;
    for (;;) {
        errno = 0;
        int got = ossl.SSL_read(t->ssl, buf, want);
        if (got > 0) return got;
        int e = ossl.SSL_get_error(t->ssl, got);
        ossl.ERR_clear_error();
        if (e == OSSL_ERROR_SYSCALL && errno == EINTR) continue;
        errno = e == OSSL_ERROR_WANT_READ || e == OSSL_ERROR_WANT_WRITE ? EAGAIN
                : e == OSSL_ERROR_ZERO_RETURN || (e == OSSL_ERROR_SYSCALL && errno == 0) ? ECONNRESET
                : e == OSSL_ERROR_SYSCALL ? errno
                                          : EPROTO;
        return -1;
    }
}

int gsr_tls_write(gsr_tls *t, const void *buf, size_t n) {
    /* OpenSSL writes with write(2), which raises SIGPIPE on a closed peer; the client library
     * lives in someone else's program, so the signal is blocked and, if it came, taken back
     * (as libpq does) rather than ignored process-wide. sigprocmask, not pthread_sigmask: on
     * Linux both set the calling thread's mask, and the latter is versioned 2.32 (compat/). */
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipe_only, &old);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    const uint8_t *p = buf;
    int rc = 0, err = 0;
    while (n > 0) {
        int chunk = n > 1u << 30 ? 1 << 30 : (int)n;
        errno = 0;
        int put = ossl.SSL_write(t->ssl, p, chunk);
        if (put > 0) {
            p += put;
            n -= (size_t)put;
            continue;
        }
        int e = ossl.SSL_get_error(t->ssl, put);
        ossl.ERR_clear_error();
        if (e == OSSL_ERROR_SYSCALL && errno == EINTR) continue;
        err = e == OSSL_ERROR_SYSCALL && errno ? errno : e == OSSL_ERROR_SSL ? EPROTO : EPIPE;
        rc = -1;
        break;
    }
    /* Whatever OpenSSL made of the failure (after a peer's reset it may say SSL_ERROR_SSL, not
     * EPIPE), a SIGPIPE this write raised is taken back before the mask is restored. */
    if (rc != 0 && !was_pending) {
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&pipe_only, NULL, &zero);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return rc;
}

int gsr_tls_pending(gsr_tls *t) { return ossl.SSL_has_pending(t->ssl); }

void gsr_tls_free(gsr_tls *t) {
    if (!t) return;
    ossl.SSL_free(t->ssl);
    if (t->ctx) ossl.SSL_CTX_free(t->ctx);
    free(t);
}
