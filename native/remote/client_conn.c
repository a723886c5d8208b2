/*
 * client_conn.c: the client's connection to its session's worker (client.h, docs/remote.md):
 * lazy connect and handshake, buffered calls that return nothing, synchronous calls, chunked
 * copies, the heartbeat, and the one-way trip to "broken". A version-3 worker also takes bulk
 * lanes (GPUSHARE_REMOTE_LANES, "Bulk lanes"): data connections opened right after HELLO, over
 * which a copy of more than one chunk is striped, one thread per lane for that copy, the
 * request and its status on the control connection as before. A version-4 worker also
 * compresses copies' chunks when asked (GPUSHARE_REMOTE_COMPRESS, "Compression"): COMPRESS
 * right after HELLO, before LANES_OPEN; each connection then has its own codec state.
 */
#define _DEFAULT_SOURCE
#include "client.h"
#include "net.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEND_BUFFER_BYTES (64u * 1024u)
#define HEARTBEAT_SECONDS 2
/* Bulk lanes when GPUSHARE_REMOTE_LANES is unset (docs/remote.md "Bulk lanes"): half of an
 * H100's native pinned bandwidth is about 27.7 GB/s; there (session 23, loopback) 1 GiB copies
 * over 8 lanes ran at 19.6 / 18.9 GB/s each way, over 16 at 24.9 / 22.9, and bare TCP carried
 * 29.1 GB/s over 8 connections, 36.7 over 16. Each lane costs the worker 16 MiB of staging
 * (pinned in place) and a thread during large copies; the client nothing but the thread. */
#define DEFAULT_LANES 16u

/* The process's one connection: state shared by every thread, so one lock guards it all. */
static struct {
    pthread_mutex_t lock;
    int state; /* 0 not yet connected, 1 connected, -1 broken (or never reachable) */
    CUresult why; /* the error every call gets once state is -1 */
    gsr_link link;
    uint32_t next_id;
    uint32_t chunk; /* the DATA frame size the worker's HELLO reply named */
    uint32_t version; /* the protocol version the worker's HELLO reply named */
    uint8_t send[SEND_BUFFER_BYTES];
    size_t sent_len;
    uint8_t reply[4096];
    time_t last_io;
    int log;
    gsr_link lanes[GSR_MAX_LANES];
    unsigned nlanes;
    /* The granted codec's state per connection (codec NONE: copies go raw). */
    gsr_packer pack;
    gsr_packer lane_pack[GSR_MAX_LANES];
} conn = {.lock = PTHREAD_MUTEX_INITIALIZER, .link = {-1, NULL}};

int gsr_log_level(void) {
    /* The environment, not conn.log: the runtime asks for entry points before it connects. */
    const char *log = getenv("GPUSHARE_REMOTE_LOG");
    if (!log || !log[0] || log[1]) return 0;
    return log[0] == '1' ? 1 : log[0] == '2' ? 2 : 0;
}

CUresult gsr_trace(const char *what, CUresult rc) {
    /* GPUSHARE_REMOTE_LOG=2: every call and its result, in order (the first refusal is the clue). */
    if (gsr_log_level() >= 2) {
        const char *name = "";
        if (rc != CUDA_SUCCESS && cuGetErrorName(rc, &name) != CUDA_SUCCESS) name = "?";
        fprintf(stderr, "gpushare remote: call %s -> %d%s%s\n", what, (int)rc, *name ? " " : "", name);
    }
    return rc;
}

void gsr_log_once(const char *what, int *logged) {
    if (gsr_log_level() < 1 || __atomic_exchange_n(logged, 1, __ATOMIC_RELAXED)) return;
    fprintf(stderr, "gpushare remote: %s\n", what);
}

/* Called with the lock held: the link is gone for good; every later call fails fast. */
static CUresult break_link(const char *why) {
    if (conn.state != -1 && conn.log) fprintf(stderr, "gpushare remote: link lost: %s\n", why);
    gsr_link_close(&conn.link);
    for (unsigned i = 0; i < conn.nlanes; i++) gsr_link_close(&conn.lanes[i]);
    conn.nlanes = 0;
    conn.state = -1;
    conn.why = CUDA_ERROR_DEVICE_UNAVAILABLE;
    return conn.why;
}

static int flush_locked(void) {
    if (conn.sent_len == 0) return 0;
    int rc = gsr_write_full(&conn.link, conn.send, conn.sent_len);
    conn.sent_len = 0;
    conn.last_io = time(NULL);
    return rc;
}

/* Reads one reply frame's header and payload (into conn.reply) for request `id`. */
static CUresult read_reply(unsigned op, uint32_t id, gsr_header *h) {
    if (gsr_recv_header(&conn.link, h) != 0) return break_link(errno ? strerror(errno) : "bad reply header");
    if (!(h->flags & GSR_FLAG_REPLY) || h->op != op || h->id != id || h->length > sizeof conn.reply)
        return break_link("reply out of step");
    if (gsr_read_full(&conn.link, conn.reply, h->length) != 0) return break_link(strerror(errno));
    conn.last_io = time(NULL);
    return CUDA_SUCCESS;
}

static CUresult finish_call(unsigned op, uint32_t id, gsr_args *out) {
    gsr_header h;
    CUresult rc = read_reply(op, id, &h);
    if (rc != CUDA_SUCCESS) return rc;
    if (h.status != CUDA_SUCCESS) return (CUresult)h.status;
    gsr_args ignored;
    if (gsr_decode(op, 1, conn.reply, h.length, out ? out : &ignored) != GSR_OK) return break_link("malformed reply");
    return CUDA_SUCCESS;
}

static void *heartbeat(void *arg) {
    (void)arg;
    for (;;) {
        sleep(HEARTBEAT_SECONDS);
        /* Only when idle: a busy connection is its own heartbeat, and a thread waiting on a
         * long synchronize holds the lock (the worker's TCP keepalive covers that case). */
        if (pthread_mutex_trylock(&conn.lock) != 0) continue;
        int stop = conn.state != 1;
        if (!stop && time(NULL) - conn.last_io >= HEARTBEAT_SECONDS) {
            uint32_t id = conn.next_id++;
            gsr_header h = {0, GSR_OP_PING, 0, id, 0, 0};
            if (flush_locked() != 0 || gsr_send_frame(&conn.link, &h, NULL, 0, NULL, 0) != 0)
                (void)break_link(strerror(errno));
            else
                (void)finish_call(GSR_OP_PING, id, NULL);
            stop = conn.state != 1;
        }
        pthread_mutex_unlock(&conn.lock);
        if (stop) return NULL;
    }
}

static CUresult send_request(unsigned op, uint16_t flags, const gsr_args *in, uint32_t *id);

/* GPUSHARE_REMOTE_LANES: 0..GSR_MAX_LANES (0: every copy on the control connection); unset or
 * empty: DEFAULT_LANES. -1 for anything else. */
static int lanes_wanted(void) {
    const char *v = getenv("GPUSHARE_REMOTE_LANES");
    if (!v || !*v) return (int)DEFAULT_LANES;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 0 || n > (long)GSR_MAX_LANES || v[0] < '0' || v[0] > '9') return -1;
    return (int)n;
}

/* After HELLO, with a version-3 worker: LANES_OPEN, then each granted lane connected, through
 * TLS when the session has it, and presented with the key and the lane token. A worker that
 * does not grant lanes leaves the session on its one connection; a lane that fails to open
 * fails the session (the worker ends it too). Lock held. */
static CUresult open_lanes_locked(const char *endpoint, const uint8_t key[GSR_KEY_BYTES], const uint8_t *pin, unsigned wanted) {
    uint32_t id;
    gsr_args in = {.v = {wanted}, .nv = 1}, out;
    CUresult rc = send_request(GSR_OP_LANES_OPEN, 0, &in, &id);
    if (rc == CUDA_SUCCESS) rc = finish_call(GSR_OP_LANES_OPEN, id, &out);
    if (conn.state != 1) return conn.why;
    if (rc != CUDA_SUCCESS) return CUDA_SUCCESS; /* not granted: one connection */
    if (out.v[0] > wanted || (out.v[0] > 0 && out.blob_len[0] != GSR_LANE_TOKEN_BYTES)) return break_link("lanes answer out of range");
    uint8_t token[GSR_LANE_TOKEN_BYTES];
    if (out.v[0] > 0) memcpy(token, out.blob[0], sizeof token);
    unsigned granted = (unsigned)out.v[0];
    for (unsigned i = 0; i < granted; i++) {
        gsr_link *l = &conn.lanes[i];
        *l = (gsr_link){gsr_connect(endpoint), NULL};
        conn.nlanes = i + 1; /* closed by break_link from here on */
        char why[256] = "";
        if (l->fd < 0) {
            snprintf(why, sizeof why, "bulk lane %u: cannot connect: %s", i, strerror(errno));
        } else if (pin && !(l->tls = gsr_tls_connect(l->fd, pin, why, sizeof why))) {
            /* why says it */
        } else {
            gsr_args hello = {.v = {GSR_MAGIC, i}, .nv = 2, .blob = {key, token}, .blob_len = {GSR_KEY_BYTES, GSR_LANE_TOKEN_BYTES}, .nblob = 2};
            uint8_t buf[128];
            gsr_writer w;
            gsr_writer_init(&w, buf, sizeof buf);
            gsr_encode(GSR_OP_LANE_HELLO, 0, &hello, &w);
            gsr_header h = {(uint32_t)w.len, GSR_OP_LANE_HELLO, 0, conn.next_id++, 0, 0}, r;
            if (gsr_send_frame(l, &h, buf, w.len, NULL, 0) != 0 || gsr_recv_header(l, &r) != 0 || r.op != GSR_OP_LANE_HELLO ||
                r.id != h.id || r.length != 0)
                snprintf(why, sizeof why, "bulk lane %u: no answer to its handshake", i);
            else if (r.status != 0)
                snprintf(why, sizeof why, "bulk lane %u refused (%d)", i, (int)r.status);
        }
        if (why[0]) {
            /* Always said: the program would otherwise see only "device unavailable". */
            fprintf(stderr, "gpushare remote: %s (GPUSHARE_REMOTE_LANES=0 keeps copies on one connection)\n", why);
            return break_link(why);
        }
        gsr_set_link_options(l->fd);
    }
    if (conn.log) fprintf(stderr, "gpushare remote: %u bulk lanes open\n", granted);
    return CUDA_SUCCESS;
}

/* After HELLO (and before LANES_OPEN): COMPRESS {codec, level}. The user asked for this codec:
 * a worker too old for it, or one that does not offer it, fails the session with the reason on
 * stderr (always), never a silent fallback to raw copies. */
static CUresult open_compress_locked(uint32_t version, unsigned codec, int level) {
    char why[256];
    if (version < GSR_VERSION_COMPRESS) {
        snprintf(why, sizeof why, "GPUSHARE_REMOTE_COMPRESS=%s: the worker speaks protocol version %u, compression needs %u",
                 gsr_codec_name(codec), (unsigned)version, GSR_VERSION_COMPRESS);
    } else {
        gsr_args in = {.v = {codec, (uint64_t)(int64_t)level}, .nv = 2}, out;
        uint32_t id;
        CUresult rc = send_request(GSR_OP_COMPRESS, 0, &in, &id);
        if (rc == CUDA_SUCCESS) rc = finish_call(GSR_OP_COMPRESS, id, &out);
        if (conn.state != 1) return conn.why;
        if (rc == CUDA_SUCCESS && out.v[0] == codec) {
            if (gsr_packer_init(&conn.pack, codec, level, conn.chunk) != 0) return break_link("no memory for compression");
            if (conn.log) fprintf(stderr, "gpushare remote: copies compressed with %s\n", gsr_codec_name(codec));
            return CUDA_SUCCESS;
        }
        char offered[64] = "";
        for (unsigned c = GSR_CODEC_NONE + 1; rc == CUDA_SUCCESS && c < GSR_CODEC_COUNT; c++)
            if (out.v[1] & (1u << c)) snprintf(offered + strlen(offered), sizeof offered - strlen(offered), "%s%s", *offered ? ", " : "", gsr_codec_name(c));
        if (rc != CUDA_SUCCESS)
            snprintf(why, sizeof why, "GPUSHARE_REMOTE_COMPRESS=%s: the worker refused COMPRESS (%d)", gsr_codec_name(codec), (int)rc);
        else
            snprintf(why, sizeof why, "GPUSHARE_REMOTE_COMPRESS=%s: the worker does not offer it (it offers: %s)", gsr_codec_name(codec),
                     *offered ? offered : "none");
    }
    fprintf(stderr, "gpushare remote: %s (GPUSHARE_REMOTE_COMPRESS=off copies raw)\n", why);
    return break_link(why);
}

static CUresult connect_locked(void) {
    if (conn.state == 1) return CUDA_SUCCESS;
    if (conn.state == -1) return conn.why;
    conn.log = gsr_log_level() >= 1;
    const char *endpoint = getenv("GPUSHARE_REMOTE");
    uint8_t key[GSR_KEY_BYTES];
    const char *hex = getenv("GPUSHARE_REMOTE_KEY");
    char file_hex[2 * GSR_KEY_BYTES + 2] = {0};
    const char *key_file = getenv("GPUSHARE_REMOTE_KEY_FILE");
    if ((!hex || !*hex) && key_file) {
        FILE *f = fopen(key_file, "r");
        if (f) {
            size_t n = fread(file_hex, 1, sizeof file_hex - 1, f);
            fclose(f);
            while (n > 0 && (file_hex[n - 1] == '\n' || file_hex[n - 1] == '\r')) file_hex[--n] = 0;
            hex = file_hex;
        }
    }
    /* A pin asks for TLS, and then nothing is ever sent in plaintext (docs/remote.md "TLS"). */
    const char *pin_hex = getenv("GPUSHARE_REMOTE_TLS_SHA256");
    uint8_t pin[GSR_FINGERPRINT_BYTES];
    int tls = pin_hex && *pin_hex;
    int lanes = lanes_wanted();
    conn.state = -1;
    /* Compression asked for must be usable here, before anything is sent. */
    const char *compress = getenv("GPUSHARE_REMOTE_COMPRESS");
    unsigned codec = GSR_CODEC_NONE;
    int level = 0;
    const char *missing = NULL;
    if (gsr_codec_parse(compress, &codec, &level) != 0) {
        fprintf(stderr, "gpushare remote: GPUSHARE_REMOTE_COMPRESS must be off, lz4, zstd or zstd:LEVEL (1 to %d), not \"%s\"\n",
                GSR_ZSTD_LEVEL_MAX, compress);
        conn.why = CUDA_ERROR_NO_DEVICE;
        return conn.why;
    }
    if (!gsr_codec_available(codec, &missing)) {
        fprintf(stderr, "gpushare remote: GPUSHARE_REMOTE_COMPRESS=%s, but %s cannot be used here: %s\n", compress, gsr_codec_name(codec), missing);
        conn.why = CUDA_ERROR_NO_DEVICE;
        return conn.why;
    }
    if (!endpoint || !*endpoint || gsr_key_from_hex(hex, key) != 0 || (tls && gsr_fingerprint_from_hex(pin_hex, pin) != 0) || lanes < 0) {
        if (conn.log || tls || lanes < 0)
            fprintf(stderr, "gpushare remote: GPUSHARE_REMOTE and a 64-hex-digit GPUSHARE_REMOTE_KEY(_FILE) are required, "
                            "GPUSHARE_REMOTE_TLS_SHA256, when set, must be 64 hex digits, and GPUSHARE_REMOTE_LANES 0 to %u\n", GSR_MAX_LANES);
        conn.why = CUDA_ERROR_NO_DEVICE;
        return conn.why;
    }
    conn.link.fd = gsr_connect(endpoint);
    if (conn.link.fd < 0) return break_link(strerror(errno));
    if (tls) {
        char why[256];
        conn.link.tls = gsr_tls_connect(conn.link.fd, pin, why, sizeof why);
        if (!conn.link.tls) {
            /* Always said, log or not: the program would otherwise see only "device unavailable". */
            fprintf(stderr, "gpushare remote: %s\n", why);
            return break_link(why);
        }
    }
    /* Every version this library speaks: the worker answers with the highest it knows too. */
    gsr_args hello = {.v = {GSR_MAGIC, GSR_VERSION_MIN, GSR_VERSION}, .nv = 3, .blob = {key}, .blob_len = {GSR_KEY_BYTES}, .nblob = 1};
    uint8_t buf[128];
    gsr_writer w;
    gsr_writer_init(&w, buf, sizeof buf);
    gsr_encode(GSR_OP_HELLO, 0, &hello, &w);
    gsr_header h = {(uint32_t)w.len, GSR_OP_HELLO, 0, conn.next_id++, 0, 0};
    if (gsr_send_frame(&conn.link, &h, buf, w.len, NULL, 0) != 0) return break_link(strerror(errno));
    conn.state = 1;
    gsr_args out;
    CUresult rc = finish_call(GSR_OP_HELLO, h.id, &out);
    if (rc != CUDA_SUCCESS) {
        if (conn.log) fprintf(stderr, "gpushare remote: the worker refused the session (%d)\n", (int)rc);
        return break_link("handshake refused");
    }
    /* Version 1 (an older worker): 1 MiB frames; 2: the chunk the worker named, within the cap. */
    uint64_t limit = out.v[0] >= 2 ? GSR_MAX_DATA : GSR_CHUNK_BYTES;
    if (out.v[0] < GSR_VERSION_MIN || out.v[0] > GSR_VERSION || out.v[1] == 0 || out.v[1] > limit) {
        if (conn.log) fprintf(stderr, "gpushare remote: the worker answered version %llu, chunk %llu\n", (unsigned long long)out.v[0], (unsigned long long)out.v[1]);
        return break_link("handshake out of range");
    }
    conn.chunk = (uint32_t)out.v[1];
    conn.version = (uint32_t)out.v[0];
    if (codec != GSR_CODEC_NONE && open_compress_locked((uint32_t)out.v[0], codec, level) != CUDA_SUCCESS) return conn.why;
    if (out.v[0] >= GSR_VERSION_LANES && lanes > 0 && open_lanes_locked(endpoint, key, tls ? pin : NULL, (unsigned)lanes) != CUDA_SUCCESS)
        return conn.why;
    for (unsigned i = 0; codec != GSR_CODEC_NONE && i < conn.nlanes; i++)
        if (gsr_packer_init(&conn.lane_pack[i], codec, level, conn.chunk) != 0) return break_link("no memory for compression");
    conn.last_io = time(NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, heartbeat, NULL) == 0) pthread_detach(t);
    return CUDA_SUCCESS;
}

CUresult gsr_connect_once(void) {
    pthread_mutex_lock(&conn.lock);
    CUresult rc = connect_locked();
    pthread_mutex_unlock(&conn.lock);
    return rc;
}

/* Sends a request frame; with the lock held and the connection up. */
static CUresult send_request(unsigned op, uint16_t flags, const gsr_args *in, uint32_t *id) {
    /* The largest request: a name, or a launch with its configuration and 4 KiB of parameters. */
    uint8_t payload[GSR_MAX_NAME + GSR_LAUNCH_HEAD_BYTES + GSR_MAX_LAUNCH_ATTRS * GSR_LAUNCH_ATTR_BYTES + 256];
    gsr_writer w;
    gsr_writer_init(&w, payload, sizeof payload);
    gsr_encode(op, 0, in, &w);
    if (w.bad) return CUDA_ERROR_INVALID_VALUE; /* too large for a request: nothing sent */
    *id = conn.next_id++;
    gsr_header h = {(uint32_t)w.len, (uint16_t)op, flags, *id, 0, gsr_current_ctx()};
    if (flags & GSR_FLAG_NO_REPLY) {
        if (GSR_HEADER_BYTES + w.len > sizeof conn.send - conn.sent_len && flush_locked() != 0)
            return break_link(strerror(errno));
        if (GSR_HEADER_BYTES + w.len <= sizeof conn.send - conn.sent_len) {
            gsr_header_encode(&h, conn.send + conn.sent_len);
            memcpy(conn.send + conn.sent_len + GSR_HEADER_BYTES, payload, w.len);
            conn.sent_len += GSR_HEADER_BYTES + w.len;
            return CUDA_SUCCESS;
        }
    }
    if (flush_locked() != 0 || gsr_send_frame(&conn.link, &h, payload, w.len, NULL, 0) != 0) return break_link(strerror(errno));
    conn.last_io = time(NULL);
    return CUDA_SUCCESS;
}

CUresult gsr_call(unsigned op, const gsr_args *in, gsr_args *out) {
    pthread_mutex_lock(&conn.lock);
    uint32_t id;
    CUresult rc = connect_locked();
    if (rc == CUDA_SUCCESS) rc = send_request(op, 0, in, &id);
    if (rc == CUDA_SUCCESS) rc = finish_call(op, id, out);
    pthread_mutex_unlock(&conn.lock);
    return gsr_trace(gsr_op_name(op), rc);
}

CUresult gsr_call_blob(unsigned op, const gsr_args *in, void *blob, size_t bytes) {
    gsr_args out;
    pthread_mutex_lock(&conn.lock);
    uint32_t id;
    CUresult rc = connect_locked();
    if (rc == CUDA_SUCCESS) rc = send_request(op, 0, in, &id);
    if (rc == CUDA_SUCCESS) rc = finish_call(op, id, &out);
    /* The blob points into conn.reply: copied before another thread's reply lands there. */
    if (rc == CUDA_SUCCESS && (out.nblob < 1 || out.blob_len[0] != bytes)) rc = break_link("reply of the wrong size");
    if (rc == CUDA_SUCCESS) memcpy(blob, out.blob[0], bytes);
    pthread_mutex_unlock(&conn.lock);
    return gsr_trace(gsr_op_name(op), rc);
}

CUresult gsr_post(unsigned op, const gsr_args *in) {
    pthread_mutex_lock(&conn.lock);
    uint32_t id;
    CUresult rc = connect_locked();
    if (rc == CUDA_SUCCESS) rc = send_request(op, GSR_FLAG_NO_REPLY, in, &id);
    pthread_mutex_unlock(&conn.lock);
    return gsr_trace(gsr_op_name(op), rc); /* sent: its own error comes at the next synchronizing call */
}

/* The DATA frames of a transfer, straight from the caller's memory (a copy's compressed where
 * the session has a codec and it pays; a module's always raw). Lock held. */
static CUresult send_data(const void *src, uint64_t bytes, gsr_packer *pack) {
    const uint8_t *p = src;
    gsr_packer raw = {0};
    for (uint64_t off = 0; off < bytes;) {
        size_t n = bytes - off > conn.chunk ? conn.chunk : (size_t)(bytes - off);
        if (gsr_send_chunk(&conn.link, pack ? pack : &raw, (uint16_t)(off + n < bytes ? GSR_FLAG_MORE : 0), p + off, n) != 0)
            return break_link(strerror(errno));
        off += n;
    }
    conn.last_io = time(NULL);
    return CUDA_SUCCESS;
}

/* One lane's part of a striped copy: chunk i (conn.chunk bytes, the last one short) on lane
 * i mod nlanes, one DATA frame of exactly its length each. */
typedef struct lane_job {
    unsigned lane;
    int dir; /* 0 host to device (send), 1 device to host (receive) */
    uint8_t *buf;
    uint64_t bytes;
    int failed;
    const char *why;
} lane_job;

static void *lane_main(void *arg) {
    lane_job *j = arg;
    gsr_link *l = &conn.lanes[j->lane];
    uint64_t stride = (uint64_t)conn.chunk * conn.nlanes;
    for (uint64_t off = (uint64_t)j->lane * conn.chunk; off < j->bytes; off += stride) {
        size_t n = j->bytes - off > conn.chunk ? conn.chunk : (size_t)(j->bytes - off);
        gsr_packer *pack = &conn.lane_pack[j->lane];
        if (j->dir == 0) {
            if (gsr_send_chunk(l, pack, (uint16_t)(off + stride < j->bytes ? GSR_FLAG_MORE : 0), j->buf + off, n) != 0) {
                j->why = "a bulk lane failed to send";
                break;
            }
            continue;
        }
        gsr_header h;
        if (gsr_recv_header(l, &h) != 0) {
            j->why = "a bulk lane failed to receive";
            break;
        }
        int got = h.op == GSR_OP_DATA && (h.flags & GSR_FLAG_REPLY);
        if (got && (h.flags & GSR_FLAG_COMPRESSED))
            got = gsr_recv_packed(l, pack, &h, conn.chunk, j->buf + off, n) == 0;
        else if (got)
            got = h.length == n && gsr_read_full(l, j->buf + off, n) == 0;
        if (!got) {
            j->why = "a bulk lane's data out of step";
            break;
        }
    }
    if (j->why) {
        /* Wakes the other lanes' threads and anything waiting on the control connection. A TLS
         * link is only shut for reading: OpenSSL answers the end of its input with an alert, and
         * a write to a socket shut for writing raises SIGPIPE in the program (reads are not
         * guarded as gsr_tls_write is); a thread blocked writing to it ends when the worker
         * closes, which it does when its lane fails. */
        j->failed = 1;
        for (unsigned i = 0; i < conn.nlanes; i++) (void)shutdown(conn.lanes[i].fd, conn.lanes[i].tls ? SHUT_RD : SHUT_RDWR);
        (void)shutdown(conn.link.fd, conn.link.tls ? SHUT_RD : SHUT_RDWR);
    }
    return NULL;
}

/* A copy's data striped over the lanes, lane 0 on this thread, the others on threads of their
 * own for this copy (one after another here if a thread cannot start: the worker's lanes are
 * independent, so that is only slower). Lock held. */
static CUresult lanes_transfer(int dir, uint8_t *buf, uint64_t bytes) {
    lane_job jobs[GSR_MAX_LANES];
    pthread_t threads[GSR_MAX_LANES];
    int started[GSR_MAX_LANES] = {0};
    uint64_t nchunks = (bytes + conn.chunk - 1) / conn.chunk;
    unsigned used = nchunks < conn.nlanes ? (unsigned)nchunks : conn.nlanes;
    for (unsigned i = 0; i < used; i++) jobs[i] = (lane_job){i, dir, buf, bytes, 0, NULL};
    for (unsigned i = 1; i < used; i++) started[i] = pthread_create(&threads[i], NULL, lane_main, &jobs[i]) == 0;
    (void)lane_main(&jobs[0]);
    const char *why = jobs[0].why;
    for (unsigned i = 1; i < used; i++) {
        if (started[i])
            (void)pthread_join(threads[i], NULL);
        else
            (void)lane_main(&jobs[i]);
        if (!why) why = jobs[i].why;
    }
    conn.last_io = time(NULL);
    return why ? break_link(why) : CUDA_SUCCESS;
}

static int on_lanes(uint64_t bytes) { return conn.nlanes > 0 && bytes > conn.chunk; }

CUresult gsr_send_htod(uint64_t dst, const void *src, uint64_t bytes, uint64_t stream, int async) {
    gsr_args in = {.v = {dst, bytes, stream, (uint64_t)(async != 0)}, .nv = 4};
    pthread_mutex_lock(&conn.lock);
    uint32_t id;
    uint16_t flags = async ? GSR_FLAG_NO_REPLY : 0;
    CUresult rc = connect_locked();
    if (rc == CUDA_SUCCESS && flush_locked() != 0) rc = break_link(strerror(errno));
    if (rc == CUDA_SUCCESS) rc = send_request(GSR_OP_MEMCPY_HTOD, flags, &in, &id);
    if (rc == CUDA_SUCCESS && flush_locked() != 0) rc = break_link(strerror(errno)); /* the request before its data */
    if (rc == CUDA_SUCCESS) rc = on_lanes(bytes) ? lanes_transfer(0, (uint8_t *)(uintptr_t)src, bytes) : send_data(src, bytes, &conn.pack);
    if (rc == CUDA_SUCCESS && !async) rc = finish_call(GSR_OP_MEMCPY_HTOD, id, NULL);
    pthread_mutex_unlock(&conn.lock);
    return gsr_trace(async ? "MEMCPY_HTOD (async)" : "MEMCPY_HTOD", rc);
}

CUresult gsr_recv_dtoh(void *dst, uint64_t src, uint64_t bytes, uint64_t stream, int async) {
    gsr_args in = {.v = {src, bytes, stream, (uint64_t)(async != 0)}, .nv = 4};
    pthread_mutex_lock(&conn.lock);
    uint32_t id;
    CUresult rc = connect_locked();
    if (rc == CUDA_SUCCESS) rc = send_request(GSR_OP_MEMCPY_DTOH, 0, &in, &id);
    uint64_t off = 0;
    if (rc == CUDA_SUCCESS && on_lanes(bytes)) {
        /* The data on the lanes (every frame, zeros where the copy failed), then the status here. */
        rc = lanes_transfer(1, dst, bytes);
        if (rc == CUDA_SUCCESS) off = bytes;
    }
    while (rc == CUDA_SUCCESS) {
        gsr_header h;
        if (gsr_recv_header(&conn.link, &h) != 0) {
            rc = break_link("bad frame in a copy");
            break;
        }
        if (h.op == GSR_OP_DATA && (h.flags & GSR_FLAG_COMPRESSED)) {
            /* Its declared length checked (the chunk, what is left) before it is decompressed. */
            uint32_t raw = 0;
            if (conn.pack.codec == GSR_CODEC_NONE || h.length > conn.chunk || gsr_read_full(&conn.link, conn.pack.buf, h.length) != 0 ||
                (raw = gsr_packed_raw_len(conn.pack.buf, h.length)) == 0 || raw > conn.chunk || raw > bytes - off ||
                gsr_unpack(&conn.pack, conn.pack.buf, h.length, (uint8_t *)dst + off, raw) != 0) {
                rc = break_link("compressed copy data out of step");
                break;
            }
            off += raw;
            continue;
        }
        if (h.op == GSR_OP_DATA) {
            if (h.length > bytes - off || gsr_read_full(&conn.link, (uint8_t *)dst + off, h.length) != 0) {
                rc = break_link("copy data out of step");
                break;
            }
            off += h.length;
            continue;
        }
        if (h.op != GSR_OP_MEMCPY_DTOH || h.id != id || h.length != 0) {
            rc = break_link("reply out of step");
            break;
        }
        conn.last_io = time(NULL);
        rc = (CUresult)h.status;
        if (rc == CUDA_SUCCESS && off != bytes) rc = break_link("copy ended short");
        break;
    }
    pthread_mutex_unlock(&conn.lock);
    return gsr_trace("MEMCPY_DTOH", rc);
}

CUresult gsr_send_module(const void *image, uint64_t bytes, int library, uint64_t *module) {
    gsr_args in = {.v = {bytes}, .nv = 1}, out;
    pthread_mutex_lock(&conn.lock);
    uint32_t id;
    CUresult rc = connect_locked();
    /* A library where the worker loads one (version 5), else a module in the current context. */
    unsigned op = library && conn.version >= GSR_VERSION_LIBRARY ? GSR_OP_LIBRARY_LOAD_DATA : GSR_OP_MODULE_LOAD_DATA;
    if (rc == CUDA_SUCCESS) rc = send_request(op, 0, &in, &id);
    if (rc == CUDA_SUCCESS) rc = send_data(image, bytes, NULL);
    if (rc == CUDA_SUCCESS) rc = finish_call(op, id, &out);
    if (rc == CUDA_SUCCESS) *module = out.v[0];
    pthread_mutex_unlock(&conn.lock);
    return gsr_trace(op == GSR_OP_LIBRARY_LOAD_DATA ? "LIBRARY_LOAD_DATA" : "MODULE_LOAD_DATA", rc);
}

uint32_t gsr_worker_version(void) {
    pthread_mutex_lock(&conn.lock);
    CUresult rc = connect_locked();
    uint32_t v = rc == CUDA_SUCCESS ? conn.version : 0;
    pthread_mutex_unlock(&conn.lock);
    return v;
}
