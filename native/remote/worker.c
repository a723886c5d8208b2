/*
 * worker.c: gpushare-remote-worker, one remote session's process (docs/remote.md).
 *
 *   gpushare-remote-worker [--listen HOST:PORT] [--key-file FILE] [--tls]
 *                          [--accept-timeout-ms N] [--idle-timeout-ms N] [--codecs LIST]
 *
 * The key comes from --key-file or GPUSHARE_REMOTE_KEY (64 hex digits); the daemon starts the
 * worker as a task's process under libgpushare with the slice's environment. It prints
 * "gpushare-remote-worker listening PORT" on stdout once it listens (PORT 0 in --listen: any
 * free one; with --tls, then " tls-sha256 FP": its fresh certificate's pin), serves the one
 * client that presents the key, then frees everything and exits. --codecs (lz4, zstd, comma
 * separated, or none; default both) names the copy compression it offers a client that asks
 * (docs/remote.md "Compression"), of those whose library loads here.
 * Exit codes: 0 the session ended (client gone), 2 usage (or --tls without OpenSSL), 3 no
 * client in time, 4 the driver failed to start, 5 the handshake (TLS or HELLO) failed.
 */
#define _DEFAULT_SOURCE
#include "net.h"
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct options {
    const char *listen;
    const char *key_file;
    int tls;
    int accept_timeout_ms;
    int idle_timeout_ms;
    uint32_t codecs; /* offered if their library loads: 1 << codec */
} options;

static int usage(const char *why) {
    fprintf(stderr, "gpushare-remote-worker: %s\nusage: gpushare-remote-worker [--listen HOST:PORT] [--key-file FILE] [--tls] "
                    "[--accept-timeout-ms N] [--idle-timeout-ms N] [--codecs lz4,zstd|none]\n", why);
    return 2;
}

static int parse_ms(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v <= 0 || v > 86400000) return -1;
    *out = (int)v;
    return 0;
}

/* --codecs: "none", or names from lz4 and zstd, comma separated. 0, or -1. */
static int parse_codecs(const char *v, uint32_t *out) {
    *out = 0;
    if (!strcmp(v, "none")) return 0;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 3 && !strncmp(p, "lz4", 3))
            *out |= 1u << GSR_CODEC_LZ4;
        else if (n == 4 && !strncmp(p, "zstd", 4))
            *out |= 1u << GSR_CODEC_ZSTD;
        else
            return -1;
        p += n;
        if (*p == ',' && *++p == 0) return -1;
    }
    return *out ? 0 : -1;
}

static int read_key(const options *o, uint8_t key[GSR_KEY_BYTES]) {
    char hex[2 * GSR_KEY_BYTES + 2] = {0};
    if (o->key_file) {
        FILE *f = fopen(o->key_file, "r");
        if (!f) return -1;
        size_t n = fread(hex, 1, sizeof hex - 1, f);
        fclose(f);
        while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r')) hex[--n] = 0;
        return gsr_key_from_hex(hex, key);
    }
    return gsr_key_from_hex(getenv("GPUSHARE_REMOTE_KEY"), key);
}

static void log_end(const char *why) { fprintf(stderr, "gpushare-remote-worker: session ended: %s\n", why); }

/* Waits up to ms for fd to be readable: 1 ready, 0 timeout, -1 error. */
static int wait_readable(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    for (;;) {
        int rc = poll(&p, 1, ms);
        if (rc < 0 && errno == EINTR) continue;
        return rc < 0 ? -1 : rc > 0;
    }
}

int gsr_in_read(gsr_session *s, void *dst, size_t n) {
    uint8_t *out = dst;
    while (n > 0) {
        if (s->in_pos == s->in_len) {
            int ready = gsr_link_pending(&s->link) ? 1 : wait_readable(s->link.fd, s->timeout_ms);
            if (ready != 1) {
                if (ready == 0) errno = ETIMEDOUT;
                return -1;
            }
            /* A large read (a copy's chunk) goes straight to its destination. */
            uint8_t *to = n >= GSR_IN_BYTES / 2 ? out : s->in;
            ssize_t got = gsr_link_recv(&s->link, to, to == out ? n : GSR_IN_BYTES);
            if (got < 0) {
                /* TLS: a record stalled halfway past the socket's receive timeout (set_timeout). */
                if (errno == EAGAIN) errno = ETIMEDOUT;
                return -1;
            }
            if (to == out) {
                out += got;
                n -= (size_t)got;
                continue;
            }
            s->in_pos = 0;
            s->in_len = (size_t)got;
        }
        size_t take = s->in_len - s->in_pos < n ? s->in_len - s->in_pos : n;
        memcpy(out, s->in + s->in_pos, take);
        s->in_pos += take;
        out += take;
        n -= take;
    }
    return 0;
}

int gsr_in_header(gsr_session *s, gsr_header *h) {
    uint8_t hb[GSR_HEADER_BYTES];
    if (gsr_in_read(s, hb, sizeof hb) != 0) return -1;
    return (int)gsr_header_decode(hb, h);
}

int gsr_in_discard(gsr_session *s, size_t n) {
    uint8_t sink[4096];
    while (n > 0) {
        size_t take = n < sizeof sink ? n : sizeof sink;
        if (gsr_in_read(s, sink, take) != 0) return -1;
        n -= take;
    }
    return 0;
}

static int handshake(gsr_session *s, const uint8_t key[GSR_KEY_BYTES]) {
    gsr_header h;
    gsr_args a;
    if (gsr_in_header(s, &h) != 0 || h.op != GSR_OP_HELLO) return -1;
    if (gsr_in_read(s, s->payload, h.length) != 0) return -1;
    CUresult status = CUDA_SUCCESS;
    if (gsr_decode(GSR_OP_HELLO, 0, s->payload, h.length, &a) != GSR_OK || a.v[0] != GSR_MAGIC)
        return -1;
    if (a.blob_len[0] != GSR_KEY_BYTES || !gsr_equal_ct(a.blob[0], key, GSR_KEY_BYTES))
        status = CUDA_ERROR_NOT_PERMITTED;
    else if (a.v[1] > GSR_VERSION || a.v[2] < GSR_VERSION_MIN || a.v[1] > a.v[2])
        status = CUDA_ERROR_NOT_SUPPORTED;
    /* The highest version both speak (the client's range is [v1, v2]), and its chunk. */
    uint32_t version = a.v[2] < GSR_VERSION ? (uint32_t)a.v[2] : GSR_VERSION;
    s->chunk = version >= 2 ? GSR_CHUNK_BYTES_V2 : GSR_CHUNK_BYTES;
    s->version = version;
    int driver = 0;
    (void)cuDriverGetVersion(&driver);
    gsr_args out = {.v = {version, s->chunk, (uint32_t)driver}, .nv = 3};
    uint8_t buf[64];
    gsr_writer w;
    gsr_writer_init(&w, buf, sizeof buf);
    if (status == CUDA_SUCCESS) gsr_encode(GSR_OP_HELLO, 1, &out, &w);
    gsr_header r = {(uint32_t)w.len, GSR_OP_HELLO, GSR_FLAG_REPLY, h.id, (int32_t)status, 0};
    if (gsr_send_frame(&s->link, &r, buf, w.len, NULL, 0) != 0) return -1;
    return status == CUDA_SUCCESS ? 0 : -1;
}

void gsr_session_prepare(gsr_session *s) {
    /* Entry points a driver may lack (cuda_extra.h): looked up as the CUDA runtime does. */
    void *p;
    if (cuGetProcAddress_v2("cuMemcpyDtoD", &p, 12000, 0, NULL) == CUDA_SUCCESS) s->memcpy_dtod = (gsr_pfn_memcpy_dtod)p;
    if (cuGetProcAddress_v2("cuMemcpyHtoDAsync", &p, 12000, 0, NULL) == CUDA_SUCCESS)
        s->memcpy_htod_async = (gsr_pfn_memcpy_htod_async)p;
    if (cuGetProcAddress_v2("cuMemcpyDtoHAsync", &p, 12000, 0, NULL) == CUDA_SUCCESS)
        s->memcpy_dtoh_async = (gsr_pfn_memcpy_dtoh_async)p;
    if (cuGetProcAddress_v2("cuFuncGetParamInfo", &p, 12040, 0, NULL) == CUDA_SUCCESS)
        s->func_get_param_info = (gsr_pfn_func_get_param_info)p;
    if (cuGetProcAddress_v2("cuFuncGetAttribute", &p, 12000, 0, NULL) == CUDA_SUCCESS) s->func_get_attribute = (gsr_pfn_func_get_attribute)p;
    if (cuGetProcAddress_v2("cuFuncSetAttribute", &p, 12000, 0, NULL) == CUDA_SUCCESS) s->func_set_attribute = (gsr_pfn_func_set_attribute)p;
    if (cuGetProcAddress_v2("cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags", &p, 12000, 0, NULL) == CUDA_SUCCESS)
        s->occupancy = (gsr_pfn_occupancy)p;
    if (cuGetProcAddress_v2("cuCtxGetStreamPriorityRange", &p, 12000, 0, NULL) == CUDA_SUCCESS)
        s->stream_priority_range = (gsr_pfn_stream_priority_range)p;
    gsr_queries_prepare(s);
}

/* Frees what the client left, children before their context; each in its own context. */
void gsr_session_release(gsr_session *s) {
    static const unsigned order[] = {GSR_KIND_MODULE, GSR_KIND_LIBRARY, GSR_KIND_EVENT, GSR_KIND_STREAM};
    gsr_table *t = &s->table;
    gsr_ring_release(s);
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        for (size_t i = 0; i < t->nobjs; i++) {
            gsr_obj *o = &t->objs[i];
            if (o->kind != order[k]) continue;
            gsr_obj *c = gsr_table_find(t, o->ctx, GSR_KIND_CONTEXT);
            if (c) (void)cuCtxSetCurrent(c->handle);
            if (o->kind == GSR_KIND_LIBRARY) { /* made only where the driver has cuLibraryUnload */
                CUresult (*unload)(void *) = (CUresult (*)(void *))s->optional[GSR_OPT_LIBRARY_UNLOAD];
                (void)unload(o->handle);
                continue;
            }
            (void)(o->kind == GSR_KIND_MODULE ? cuModuleUnload(o->handle)
                   : o->kind == GSR_KIND_EVENT ? cuEventDestroy_v2(o->handle)
                                               : cuStreamDestroy_v2(o->handle));
        }
    for (size_t i = 0; i < t->nallocs; i++) {
        if (t->allocs[i].module) continue; /* a module's global: gone with its module */
        gsr_obj *c = gsr_table_find(t, t->allocs[i].ctx, GSR_KIND_CONTEXT);
        if (c) (void)cuCtxSetCurrent(c->handle);
        (void)cuMemFree_v2(t->allocs[i].base);
    }
    (void)cuCtxSetCurrent(NULL);
    for (size_t i = 0; i < t->nobjs; i++) {
        gsr_obj *o = &t->objs[i];
        if (o->kind != GSR_KIND_CONTEXT) continue;
        if (o->primary_refs == 0) (void)cuCtxDestroy_v2(o->handle);
        while (o->primary_refs-- > 0) (void)cuDevicePrimaryCtxRelease_v2(o->device);
    }
    gsr_table_free(t);
}

/* Every wait inside one TLS read (a record that arrives in pieces) is bounded too: the socket's
 * receive timeout, so a half-sent record cannot hold the worker past the timeout. */
static void set_timeout(gsr_session *s, int ms) {
    s->timeout_ms = ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (s->link.fd >= 0) (void)setsockopt(s->link.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* The client's connection: TLS first when the session has it. 0, or -1 (said on stderr). */
static int open_link(gsr_session *s, gsr_tls_server *srv, const uint8_t key[GSR_KEY_BYTES]) {
    if (srv) {
        char why[256];
        s->link.tls = gsr_tls_accept(srv, s->link.fd, why, sizeof why);
        if (!s->link.tls) {
            fprintf(stderr, "gpushare-remote-worker: %s\n", why);
            return -1;
        }
    }
    return handshake(s, key);
}

/* What the loop needs to open bulk lanes: the listening socket (kept until the first request
 * after HELLO, -1 after), the TLS server, the key, the bound of each wait. */
typedef struct lane_setup {
    int lfd;
    gsr_tls_server *srv;
    const uint8_t *key;
    int accept_timeout_ms;
    int idle_timeout_ms;
} lane_setup;

/* One lane's handshake on a fresh connection: TLS when the session has it, then LANE_HELLO
 * {magic, index, key, token}, answered with its status. 0, or -1 (said on stderr). */
static int lane_handshake(lane_setup *ls, gsr_lane *lane, unsigned index, const uint8_t token[GSR_LANE_TOKEN_BYTES]) {
    if (ls->srv) {
        char why[256];
        lane->link.tls = gsr_tls_accept(ls->srv, lane->link.fd, why, sizeof why);
        if (!lane->link.tls) {
            fprintf(stderr, "gpushare-remote-worker: lane %u: %s\n", index, why);
            return -1;
        }
    }
    gsr_header h;
    uint8_t buf[256];
    gsr_args a;
    if (gsr_recv_header(&lane->link, &h) != 0 || h.op != GSR_OP_LANE_HELLO || h.length > sizeof buf ||
        gsr_read_full(&lane->link, buf, h.length) != 0 || gsr_decode(GSR_OP_LANE_HELLO, 0, buf, h.length, &a) != GSR_OK ||
        a.v[0] != GSR_MAGIC) {
        fprintf(stderr, "gpushare-remote-worker: lane %u: no LANE_HELLO\n", index);
        return -1;
    }
    /* Both compared whole, in constant time, whatever the first said. */
    int key_ok = a.blob_len[0] == GSR_KEY_BYTES && gsr_equal_ct(a.blob[0], ls->key, GSR_KEY_BYTES);
    int token_ok = a.blob_len[1] == GSR_LANE_TOKEN_BYTES && gsr_equal_ct(a.blob[1], token, GSR_LANE_TOKEN_BYTES);
    CUresult status = key_ok && token_ok && a.v[1] == index ? CUDA_SUCCESS : CUDA_ERROR_NOT_PERMITTED;
    gsr_header r = {0, GSR_OP_LANE_HELLO, GSR_FLAG_REPLY, h.id, (int32_t)status, 0};
    if (gsr_send_frame(&lane->link, &r, NULL, 0, NULL, 0) != 0) return -1;
    if (status != CUDA_SUCCESS) {
        fprintf(stderr, "gpushare-remote-worker: lane %u refused: %s\n", index,
                !key_ok ? "wrong key" : !token_ok ? "wrong lane token" : "lane index out of order");
        return -1;
    }
    return 0;
}

/* COMPRESS {u32 codec, i32 level} (version >= 4, before LANES_OPEN, once): the reply is {u32
 * granted, u32 offered}: the codec asked when this worker offers it (and the level is in its
 * range), else 0 (none), and the mask of what it offers, so the client can say why. Copies'
 * chunks may then come and go compressed with the granted codec, on every connection. */
static void compress_open(gsr_session *s, const gsr_header *h) {
    gsr_args a;
    CUresult status = CUDA_SUCCESS;
    uint32_t granted = GSR_CODEC_NONE;
    if (gsr_decode(GSR_OP_COMPRESS, 0, s->payload, h->length, &a) != GSR_OK) status = CUDA_ERROR_INVALID_VALUE;
    else if (s->version < GSR_VERSION_COMPRESS) status = CUDA_ERROR_NOT_SUPPORTED;
    if (status == CUDA_SUCCESS && a.v[0] > GSR_CODEC_NONE && a.v[0] < GSR_CODEC_COUNT && (s->codecs & (1u << a.v[0]))) {
        int level = (int)(int64_t)a.v[1];
        int level_ok = a.v[0] == GSR_CODEC_LZ4 ? level == 0 : level >= 1 && level <= GSR_ZSTD_LEVEL_MAX;
        if (!level_ok) {
            fprintf(stderr, "gpushare-remote-worker: compression %s level %d refused\n", gsr_codec_name((unsigned)a.v[0]), level);
        } else if (gsr_packer_init(&s->pack, (unsigned)a.v[0], level, GSR_CHUNK_BYTES_V2) == 0) {
            granted = (uint32_t)a.v[0];
            fprintf(stderr, "gpushare-remote-worker: copies compressed with %s (level %d)\n", gsr_codec_name(granted), level);
        }
    }
    gsr_args out = {.v = {granted, s->codecs}, .nv = 2};
    uint8_t buf[32];
    gsr_writer w;
    gsr_writer_init(&w, buf, sizeof buf);
    if (status == CUDA_SUCCESS) gsr_encode(GSR_OP_COMPRESS, 1, &out, &w);
    gsr_header r = {(uint32_t)w.len, GSR_OP_COMPRESS, GSR_FLAG_REPLY, h->id, (int32_t)status, 0};
    if (gsr_send_frame(&s->link, &r, buf, w.len, NULL, 0) != 0) s->broken = 1;
}

/* LANES_OPEN {u32 asked} (the first request after HELLO, version >= 3): the reply grants
 * min(asked, GSR_MAX_LANES) lanes and gives a fresh token; then exactly that many connections
 * are accepted, in order, each bounded by the accept timeout. A lane that fails its handshake
 * ends the session, as a failed HELLO ends the worker (the key gets one guess). 0 (the
 * session goes on, with or without lanes), or -1 (it ends). */
static int open_lanes(gsr_session *s, lane_setup *ls, const gsr_header *h) {
    gsr_args a;
    CUresult status = CUDA_SUCCESS;
    if (gsr_decode(GSR_OP_LANES_OPEN, 0, s->payload, h->length, &a) != GSR_OK) status = CUDA_ERROR_INVALID_VALUE;
    else if (s->version < GSR_VERSION_LANES || ls->lfd < 0) status = CUDA_ERROR_NOT_SUPPORTED;
    unsigned n = status == CUDA_SUCCESS ? (a.v[0] < GSR_MAX_LANES ? (unsigned)a.v[0] : GSR_MAX_LANES) : 0;
    uint8_t token[GSR_LANE_TOKEN_BYTES];
    if (n > 0 && gsr_random(token, sizeof token) != 0) status = CUDA_ERROR_OPERATING_SYSTEM;
    if (status == CUDA_SUCCESS && n > 0) {
        /* s->nlanes counts the lanes with a ring; gsr_lanes_free frees those and closes their links. */
        if (!(s->lanes = calloc(n, sizeof *s->lanes))) status = CUDA_ERROR_OUT_OF_MEMORY;
        for (unsigned i = 0; status == CUDA_SUCCESS && i < n; i++) {
            s->lanes[i].link = (gsr_link){-1, NULL};
            s->lanes[i].ring.pageable = gsr_alloc_bulk((size_t)GSR_RING_SLOTS * GSR_CHUNK_BYTES_V2, NULL);
            s->nlanes = s->lanes[i].ring.pageable ? i + 1 : i;
            /* Each lane compresses on its own thread: its own codec state and scratch. */
            if (!s->lanes[i].ring.pageable ||
                (s->pack.codec != GSR_CODEC_NONE && gsr_packer_init(&s->lanes[i].pack, s->pack.codec, s->pack.level, GSR_CHUNK_BYTES_V2) != 0))
                status = CUDA_ERROR_OUT_OF_MEMORY;
        }
        if (status != CUDA_SUCCESS) {
            gsr_lanes_free(s);
            n = 0;
        }
    }
    gsr_args out = {.v = {n}, .nv = 1, .blob = {token}, .blob_len = {n > 0 ? GSR_LANE_TOKEN_BYTES : 0}, .nblob = 1};
    uint8_t buf[64];
    gsr_writer w;
    gsr_writer_init(&w, buf, sizeof buf);
    if (status == CUDA_SUCCESS) gsr_encode(GSR_OP_LANES_OPEN, 1, &out, &w);
    gsr_header r = {(uint32_t)w.len, GSR_OP_LANES_OPEN, GSR_FLAG_REPLY, h->id, (int32_t)status, 0};
    if (gsr_send_frame(&s->link, &r, buf, w.len, NULL, 0) != 0) return -1;
    if (status != CUDA_SUCCESS) return 0; /* refused: the session goes on without lanes */
    for (unsigned i = 0; i < n; i++) {
        gsr_lane *lane = &s->lanes[i];
        if (wait_readable(ls->lfd, ls->accept_timeout_ms) != 1) {
            fprintf(stderr, "gpushare-remote-worker: lane %u did not connect within %d ms\n", i, ls->accept_timeout_ms);
            return -1;
        }
        lane->link.fd = accept(ls->lfd, NULL, NULL);
        if (lane->link.fd < 0) return -1;
        gsr_set_link_options(lane->link.fd);
        struct timeval tv = {ls->accept_timeout_ms / 1000, (ls->accept_timeout_ms % 1000) * 1000};
        (void)setsockopt(lane->link.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (lane_handshake(ls, lane, i, token) != 0) return -1;
        /* Between copies a lane is idle as long as the session likes; inside one, a read waits
         * at most the idle timeout. */
        tv = (struct timeval){ls->idle_timeout_ms / 1000, (ls->idle_timeout_ms % 1000) * 1000};
        (void)setsockopt(lane->link.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    if (n > 0) fprintf(stderr, "gpushare-remote-worker: %u bulk lanes open\n", n);
    return 0;
}

static int serve(gsr_session *s, lane_setup *ls) {
    int compress_asked = 0;
    for (;;) {
        gsr_header h;
        int rc = gsr_in_header(s, &h);
        if (rc < 0) {
            log_end(errno == ETIMEDOUT ? "no frame within the idle timeout" : strerror(errno));
            return 0;
        }
        if (rc > 0) {
            log_end("bad frame header");
            return 0;
        }
        /* The header allows a DATA frame up to a chunk, but outside a copy none belongs here,
         * and the payload buffer holds a call's frame only: refuse before reading into it. */
        if (h.length > GSR_MAX_PAYLOAD) {
            log_end("a frame larger than a call's outside a copy");
            return 0;
        }
        if (gsr_in_read(s, s->payload, h.length) != 0) {
            log_end(errno == ETIMEDOUT ? "a frame stalled past the idle timeout" : "link lost inside a frame");
            return 0;
        }
        if (h.op == GSR_OP_COMPRESS && ls->lfd >= 0 && !compress_asked) {
            /* Part of the session's start: the listener stays open for LANES_OPEN. */
            compress_asked = 1;
            compress_open(s, &h);
            if (s->broken) {
                log_end("link lost answering COMPRESS");
                return 0;
            }
            continue;
        }
        if (h.op == GSR_OP_LANES_OPEN && ls->lfd >= 0) {
            int lanes_rc = open_lanes(s, ls, &h);
            close(ls->lfd);
            ls->lfd = -1;
            if (lanes_rc != 0) {
                log_end("a bulk lane failed its handshake");
                return 5;
            }
            continue;
        }
        if (ls->lfd >= 0) { /* no lanes asked: nobody else is let in */
            close(ls->lfd);
            ls->lfd = -1;
        }
        if (gsr_session_handle(s, &h) != 0) {
            if (s->nlanes > 0 && s->broken) {
                log_end("a bulk lane failed (closed, silent or out of step), or the link did");
                return 0;
            }
            log_end("request out of step with the protocol, or the link failed");
            return 0;
        }
    }
}

int main(int argc, char **argv) {
    options o = {"127.0.0.1:0", NULL, 0, 30000, 60000, (1u << GSR_CODEC_LZ4) | (1u << GSR_CODEC_ZSTD)};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--listen") && v)
            o.listen = v;
        else if (!strcmp(argv[i], "--key-file") && v)
            o.key_file = v;
        else if (!strcmp(argv[i], "--tls")) {
            o.tls = 1;
            continue;
        }
        else if (!strcmp(argv[i], "--accept-timeout-ms") && v) {
            if (parse_ms(v, &o.accept_timeout_ms) != 0) return usage("--accept-timeout-ms takes 1..86400000");
        } else if (!strcmp(argv[i], "--idle-timeout-ms") && v) {
            if (parse_ms(v, &o.idle_timeout_ms) != 0) return usage("--idle-timeout-ms takes 1..86400000");
        } else if (!strcmp(argv[i], "--codecs") && v) {
            if (parse_codecs(v, &o.codecs) != 0) return usage("--codecs takes none, or lz4 and/or zstd, comma separated");
        } else
            return usage("unknown or incomplete argument");
        i++;
    }
    uint8_t key[GSR_KEY_BYTES];
    if (read_key(&o, key) != 0) {
        /* An unreadable file is not a malformed key: say which (sandbox users: docs/remote.md). */
        if (o.key_file && access(o.key_file, R_OK) != 0) {
            fprintf(stderr, "gpushare-remote-worker: cannot read the key file %s: %s\n", o.key_file, strerror(errno));
            return 2;
        }
        return usage("the session key (--key-file or GPUSHARE_REMOTE_KEY) must be 64 hex digits");
    }
    unsetenv("GPUSHARE_REMOTE_KEY"); /* not inherited by anything the driver starts */
    /* A write to a connection the client closed, or one a failed bulk lane shut down, is an error
     * value here, never a signal (OpenSSL writes alerts with write(2), reads included). */
    signal(SIGPIPE, SIG_IGN);

    CUresult rc = cuInit(0);
    if (rc != CUDA_SUCCESS) {
        fprintf(stderr, "gpushare-remote-worker: cuInit failed (%d)\n", (int)rc);
        return 4;
    }
    /* The session's certificate, before it listens: its pin is in the listening line. */
    gsr_tls_server *srv = NULL;
    char fingerprint[2 * GSR_FINGERPRINT_BYTES + 1] = "";
    if (o.tls) {
        char why[256];
        if (!(srv = gsr_tls_server_new(fingerprint, why, sizeof why))) {
            fprintf(stderr, "gpushare-remote-worker: --tls: %s\n", why);
            return 2;
        }
    }
    unsigned port = 0;
    int lfd = gsr_listen(o.listen, &port);
    if (lfd < 0) {
        fprintf(stderr, "gpushare-remote-worker: cannot listen on %s: %s\n", o.listen, strerror(errno));
        gsr_tls_server_free(srv);
        return 2;
    }
    if (srv)
        printf("gpushare-remote-worker listening %u tls-sha256 %s\n", port, fingerprint);
    else
        printf("gpushare-remote-worker listening %u\n", port);
    fflush(stdout);

    gsr_session s;
    memset(&s, 0, sizeof s);
    s.link = (gsr_link){-1, NULL};
    s.payload = malloc(GSR_MAX_PAYLOAD);
    s.ring.pageable = gsr_alloc_bulk((size_t)GSR_RING_SLOTS * GSR_CHUNK_BYTES_V2, NULL);
    s.chunk = GSR_CHUNK_BYTES;
    s.in = malloc(GSR_IN_BYTES);
    s.timeout_ms = o.accept_timeout_ms; /* the handshake's; the idle timeout once it is done */
    int code = 0;
    if (!s.payload || !s.ring.pageable || !s.in) code = 4;
    if (code == 0) gsr_session_prepare(&s);
    /* The codecs offered: those named whose library loads here (a missing one is said, once). */
    for (unsigned c = GSR_CODEC_NONE + 1; c < GSR_CODEC_COUNT; c++) {
        const char *why = NULL;
        if (!(o.codecs & (1u << c))) continue;
        if (gsr_codec_available(c, &why))
            s.codecs |= 1u << c;
        else
            fprintf(stderr, "gpushare-remote-worker: %s compression not offered: %s\n", gsr_codec_name(c), why);
    }
    /* One client, the first to connect: one that fails the handshake ends the worker too,
     * so a session key gets exactly one guess. */
    while (code == 0 && s.link.fd < 0) {
        if (wait_readable(lfd, o.accept_timeout_ms) != 1) {
            fprintf(stderr, "gpushare-remote-worker: no client within %d ms\n", o.accept_timeout_ms);
            code = 3;
            break;
        }
        s.link.fd = accept(lfd, NULL, NULL);
        if (s.link.fd < 0) continue;
        gsr_set_link_options(s.link.fd);
        set_timeout(&s, o.accept_timeout_ms);
        if (open_link(&s, srv, key) != 0) {
            fprintf(stderr, "gpushare-remote-worker: the client failed the handshake\n");
            code = 5;
        }
    }
    /* Kept open for the bulk lanes the first request may ask for (open_lanes). */
    lane_setup ls = {code == 0 ? lfd : -1, srv, key, o.accept_timeout_ms, o.idle_timeout_ms};
    if (code != 0) close(lfd);
    set_timeout(&s, o.idle_timeout_ms);
    if (code == 0) code = serve(&s, &ls);
    if (ls.lfd >= 0) close(ls.lfd);
    gsr_session_release(&s);
    if (s.pack.codec != GSR_CODEC_NONE) {
        uint64_t packed = s.pack.packed, raw = s.pack.raw, unpacked = s.pack.unpacked;
        for (unsigned i = 0; i < s.nlanes; i++) {
            packed += s.lanes[i].pack.packed;
            raw += s.lanes[i].pack.raw;
            unpacked += s.lanes[i].pack.unpacked;
        }
        fprintf(stderr, "gpushare-remote-worker: %s: %llu chunks sent compressed, %llu raw; %llu received compressed\n",
                gsr_codec_name(s.pack.codec), (unsigned long long)packed, (unsigned long long)raw, (unsigned long long)unpacked);
    }
    gsr_packer_free(&s.pack);
    gsr_lanes_free(&s);
    gsr_link_close(&s.link);
    gsr_tls_server_free(srv);
    free(s.payload);
    free(s.ring.pageable);
    free(s.in);
    fprintf(stderr, "gpushare-remote-worker: everything freed, exiting\n");
    return code;
}
