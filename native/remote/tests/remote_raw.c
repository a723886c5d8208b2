/*
 * remote_raw.c: a hand-driven protocol client (run_remote_tests.sh): bad frames and a client
 * that goes away at each stage of a session. The worker must answer a bad request with an
 * error and stay up, or drop a stream it can no longer follow, and in every case free what
 * the session held and exit; never crash or hang.
 *
 *   remote_raw MODE HOST:PORT KEYHEX
 *   MODE: nohello | silent | badkey | oldversion | garbage | badpayload | midhtod | middtoh | midframe | stall
 *         | copies | bigframe | lanes | lanebadkey | lanebadtoken | lanebadindex | lanedrop | lanedropdtoh
 *         | lanebadframe | laneslate | compressed | lieover | lieleft | lieshort | liegarbage | lieungranted
 *         | lielane
 *   (silent: connects and says nothing for 3 s; lane*: bulk lanes, GSR_RAW_VERSION=3, docs/remote.md
 *   "Bulk lanes"; compressed, lie*: version 4, COMPRESS with GSR_RAW_CODEC (lz4, zstd; default
 *   lz4), "Compression": copies both ways with compressed chunks, and compressed frames that lie)
 *
 * With GSR_RAW_TLS_SHA256 set (the worker's pin) it speaks TLS first, as the client does.
 */
#define _DEFAULT_SOURCE
#include "gs_cuda.h"
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gsr_link conn = {-1, NULL};
static gsr_link lanes[GSR_MAX_LANES];
static unsigned nlanes;
static uint8_t lane_token[GSR_LANE_TOKEN_BYTES];
static const char *endpoint;
static const uint8_t *pin;
static uint32_t next_id = 1;
static uint8_t payload[GSR_MAX_DATA + 64];

static void die(const char *why) {
    fprintf(stderr, "remote_raw: FAIL: %s\n", why);
    exit(1);
}

static void send_op(unsigned op, uint16_t flags, uint64_t ctx, const gsr_args *in) {
    uint8_t buf[512];
    gsr_writer w;
    gsr_writer_init(&w, buf, sizeof buf);
    gsr_encode(op, 0, in, &w);
    if (w.bad) die("encode");
    gsr_header h = {(uint32_t)w.len, (uint16_t)op, flags, next_id++, 0, ctx};
    if (gsr_send_frame(&conn, &h, buf, w.len, NULL, 0) != 0) die("send");
}

/* The next reply: its status; *out decoded when it succeeded. */
static int reply(unsigned op, gsr_args *out) {
    gsr_header h;
    if (gsr_recv_header(&conn, &h) != 0) die("no reply");
    if (h.op != op || !(h.flags & GSR_FLAG_REPLY)) die("reply of another op");
    if (gsr_read_full(&conn, payload, h.length) != 0) die("reply payload");
    gsr_args ignored;
    if (h.status == 0 && gsr_decode(op, 1, payload, h.length, out ? out : &ignored) != GSR_OK) die("reply decode");
    return h.status;
}

static int call(unsigned op, uint64_t ctx, const gsr_args *in, gsr_args *out) {
    send_op(op, 0, ctx, in);
    return reply(op, out);
}

static void expect(int got, int want, const char *what) {
    if (got != want) {
        fprintf(stderr, "remote_raw: FAIL: %s = %d, want %d\n", what, got, want);
        exit(1);
    }
}

/* After a stream the worker cannot follow: it closes (EOF), it does not answer. */
static void expect_closed(void) {
    uint8_t b;
    if (gsr_link_recv(&conn, &b, 1) > 0) die("the worker kept a broken stream open");
}

static void hello(const uint8_t *key, uint32_t min, uint32_t max) {
    gsr_args in = {.v = {GSR_MAGIC, min, max}, .nv = 3, .blob = {key}, .blob_len = {GSR_KEY_BYTES}, .nblob = 1};
    send_op(GSR_OP_HELLO, 0, 0, &in);
}

/* A pattern through the session both ways: host to device in the session's chunk (the last one
 * short), then device to host, compared; a range one byte past the allocation is refused. */
static int copies(uint64_t ctx, uint64_t dptr, uint64_t size, uint32_t chunk) {
    uint8_t *src = malloc(size), *back = malloc(size);
    if (!src || !back) die("malloc");
    for (uint64_t i = 0; i < size; i++) src[i] = (uint8_t)(i * 2654435761u >> 13);
    send_op(GSR_OP_MEMCPY_HTOD, 0, ctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
    for (uint64_t off = 0; off < size;) {
        uint32_t n = size - off > chunk ? chunk : (uint32_t)(size - off);
        gsr_header d = {n, GSR_OP_DATA, (uint16_t)(off + n < size ? GSR_FLAG_MORE : 0), 0, 0, 0};
        if (gsr_send_frame(&conn, &d, src + off, n, NULL, 0) != 0) die("send data");
        off += n;
    }
    expect(reply(GSR_OP_MEMCPY_HTOD, NULL), 0, "host to device");
    send_op(GSR_OP_MEMCPY_DTOH, 0, ctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
    uint64_t got = 0;
    for (;;) {
        gsr_header h;
        if (gsr_recv_header(&conn, &h) != 0) die("device to host: no frame");
        if (h.op != GSR_OP_DATA) {
            if (h.op != GSR_OP_MEMCPY_DTOH || h.status != 0 || h.length != 0) die("device to host: bad end");
            break;
        }
        if (h.length > chunk || h.length > size - got) die("device to host: a frame over the chunk");
        if (gsr_read_full(&conn, back + got, h.length) != 0) die("device to host: data");
        got += h.length;
    }
    if (got != size || memcmp(src, back, size) != 0) die("device to host: not what was written");
    /* Bounds before any byte moves: one byte past the allocation, the data taken in and refused. */
    send_op(GSR_OP_MEMCPY_HTOD, 0, ctx, &(gsr_args){.v = {dptr + 1, size, 0, 0}, .nv = 4});
    for (uint64_t off = 0; off < size;) {
        uint32_t n = size - off > chunk ? chunk : (uint32_t)(size - off);
        gsr_header d = {n, GSR_OP_DATA, (uint16_t)(off + n < size ? GSR_FLAG_MORE : 0), 0, 0, 0};
        if (gsr_send_frame(&conn, &d, back + off, n, NULL, 0) != 0) die("send data");
        off += n;
    }
    expect(reply(GSR_OP_MEMCPY_HTOD, NULL), CUDA_ERROR_INVALID_VALUE, "a copy one byte past the allocation");
    expect(call(GSR_OP_MEMCPY_DTOH, ctx, &(gsr_args){.v = {dptr + 1, size, 0, 0}, .nv = 4}, NULL), CUDA_ERROR_INVALID_VALUE,
           "a read one byte past the allocation");
    memset(back, 0, size);
    send_op(GSR_OP_MEMCPY_DTOH, 0, ctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
    for (got = 0;;) {
        gsr_header h;
        if (gsr_recv_header(&conn, &h) != 0) die("second read: no frame");
        if (h.op != GSR_OP_DATA) break;
        if (h.length > size - got || gsr_read_full(&conn, back + got, h.length) != 0) die("second read: data");
        got += h.length;
    }
    if (got != size || memcmp(src, back, size) != 0) die("a refused copy changed the memory");
    free(src);
    free(back);
    printf("remote_raw copies ok (version %u, %llu bytes in %u-byte chunks)\n", chunk == GSR_CHUNK_BYTES ? 1u : 2u,
           (unsigned long long)size, chunk);
    return 0;
}

/* LANES_OPEN for n lanes: the number granted and the token. */
static unsigned lanes_open(unsigned n) {
    gsr_args out;
    expect(call(GSR_OP_LANES_OPEN, 0, &(gsr_args){.v = {n}, .nv = 1}, &out), 0, "lanes open");
    if (out.v[0] != n || out.blob_len[0] != GSR_LANE_TOKEN_BYTES) die("lanes open: not the lanes asked, or no token");
    memcpy(lane_token, out.blob[0], sizeof lane_token);
    return (unsigned)out.v[0];
}

/* Connects lane i (TLS when the session has it) and sends its LANE_HELLO; the reply's status. */
static int lane_connect(unsigned i, const uint8_t *key, const uint8_t *token, uint32_t index) {
    gsr_link *l = &lanes[i];
    *l = (gsr_link){gsr_connect(endpoint), NULL};
    if (l->fd < 0) die("lane connect");
    char why[256];
    if (pin && !(l->tls = gsr_tls_connect(l->fd, pin, why, sizeof why))) die(why);
    gsr_args in = {.v = {GSR_MAGIC, index}, .nv = 2, .blob = {key, token}, .blob_len = {GSR_KEY_BYTES, GSR_LANE_TOKEN_BYTES}, .nblob = 2};
    uint8_t buf[128];
    gsr_writer w;
    gsr_writer_init(&w, buf, sizeof buf);
    gsr_encode(GSR_OP_LANE_HELLO, 0, &in, &w);
    gsr_header h = {(uint32_t)w.len, GSR_OP_LANE_HELLO, 0, next_id++, 0, 0}, r;
    if (gsr_send_frame(l, &h, buf, w.len, NULL, 0) != 0) die("lane hello");
    if (gsr_recv_header(l, &r) != 0 || r.op != GSR_OP_LANE_HELLO || !(r.flags & GSR_FLAG_REPLY) || r.length != 0) die("lane hello reply");
    nlanes = i + 1;
    return r.status;
}

/* Host to device over the lanes: the request on the control connection, chunk i on lane
 * i mod nlanes (one lane after another: the worker reads them all at once). */
static int lanes_htod(uint64_t ctx, uint64_t dptr, const uint8_t *src, uint64_t size, uint32_t chunk, int async) {
    send_op(GSR_OP_MEMCPY_HTOD, async ? GSR_FLAG_NO_REPLY : 0, ctx, &(gsr_args){.v = {dptr, size, 0, (uint64_t)async}, .nv = 4});
    for (unsigned lane = 0; lane < nlanes; lane++)
        for (uint64_t off = (uint64_t)lane * chunk; off < size; off += (uint64_t)chunk * nlanes) {
            uint32_t n = size - off > chunk ? chunk : (uint32_t)(size - off);
            gsr_header d = {n, GSR_OP_DATA, 0, 0, 0, 0};
            if (gsr_send_frame(&lanes[lane], &d, src + off, n, NULL, 0) != 0) die("lane data");
        }
    return async ? 0 : reply(GSR_OP_MEMCPY_HTOD, NULL);
}

static int lanes_dtoh(uint64_t ctx, uint64_t dptr, uint8_t *dst, uint64_t size, uint32_t chunk) {
    send_op(GSR_OP_MEMCPY_DTOH, 0, ctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
    for (unsigned lane = 0; lane < nlanes; lane++)
        for (uint64_t off = (uint64_t)lane * chunk; off < size; off += (uint64_t)chunk * nlanes) {
            uint32_t n = size - off > chunk ? chunk : (uint32_t)(size - off);
            gsr_header h;
            if (gsr_recv_header(&lanes[lane], &h) != 0 || h.op != GSR_OP_DATA || h.length != n ||
                gsr_read_full(&lanes[lane], dst + off, n) != 0)
                die("lane data in");
        }
    return reply(GSR_OP_MEMCPY_DTOH, NULL);
}

static void fill(uint8_t *p, uint64_t n, unsigned seed) {
    for (uint64_t i = 0; i < n; i++) p[i] = (uint8_t)((i + seed) * 2654435761u >> 13);
}

/* Version 4, COMPRESS granted (docs/remote.md "Compression"). */
static gsr_packer pack;

static void compress_open(unsigned codec, int level) {
    gsr_args out;
    expect(call(GSR_OP_COMPRESS, 0, &(gsr_args){.v = {codec, (uint64_t)(int64_t)level}, .nv = 2}, &out), 0, "compress");
    if (out.v[0] != codec || !(out.v[1] & (1u << codec))) die("compress: not granted");
    if (gsr_packer_init(&pack, codec, level, GSR_CHUNK_BYTES_V2) != 0) die("packer");
}

/* Compressible (runs) and random halves, 6 chunks + 12345 bytes, to the device with every
 * chunk that pays compressed, back (the worker compresses what pays), compared; a second
 * COMPRESS refused; the counts of compressed chunks each way printed. */
static int compressed_copies(uint64_t ctx, uint32_t chunk) {
    const uint64_t size = 6ull * chunk + 12345;
    gsr_args out;
    expect(call(GSR_OP_MEM_ALLOC, ctx, &(gsr_args){.v = {size}, .nv = 1}, &out), 0, "alloc");
    uint64_t dptr = out.v[0];
    uint8_t *src = malloc(size), *back = malloc(size);
    if (!src || !back) die("malloc");
    uint64_t x = 88172645463325252ull;
    for (uint64_t i = 0; i < size; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        src[i] = i < size / 2 ? (uint8_t)((i / 101) % 3 ? 0 : i) : (uint8_t)x;
    }
    send_op(GSR_OP_MEMCPY_HTOD, 0, ctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
    for (uint64_t off = 0; off < size;) {
        uint32_t n = size - off > chunk ? chunk : (uint32_t)(size - off);
        if (gsr_send_chunk(&conn, &pack, (uint16_t)(off + n < size ? GSR_FLAG_MORE : 0), src + off, n) != 0) die("send data");
        off += n;
    }
    expect(reply(GSR_OP_MEMCPY_HTOD, NULL), 0, "host to device");
    send_op(GSR_OP_MEMCPY_DTOH, 0, ctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
    uint64_t got = 0, packed_in = 0;
    for (;;) {
        gsr_header h;
        if (gsr_recv_header(&conn, &h) != 0) die("device to host: no frame");
        if (h.op != GSR_OP_DATA) {
            if (h.op != GSR_OP_MEMCPY_DTOH || h.status != 0 || h.length != 0) die("device to host: bad end");
            break;
        }
        if (h.length > chunk) die("device to host: a frame over the chunk");
        if (h.flags & GSR_FLAG_COMPRESSED) {
            if (gsr_read_full(&conn, pack.buf, h.length) != 0) die("device to host: data");
            uint32_t raw = gsr_packed_raw_len(pack.buf, h.length);
            if (raw == 0 || raw > size - got || gsr_unpack(&pack, pack.buf, h.length, back + got, raw) != 0) die("device to host: a bad compressed frame");
            got += raw;
            packed_in++;
            continue;
        }
        if (h.length > size - got || gsr_read_full(&conn, back + got, h.length) != 0) die("device to host: data");
        got += h.length;
    }
    if (got != size || memcmp(src, back, size) != 0) die("device to host: not what was written");
    if (pack.packed == 0 || pack.raw == 0 || packed_in == 0) die("compressed copies: nothing compressed, or nothing went raw");
    expect(call(GSR_OP_COMPRESS, 0, &(gsr_args){.v = {pack.codec, 0}, .nv = 2}, NULL), CUDA_ERROR_NOT_SUPPORTED, "a second COMPRESS");
    printf("remote_raw compressed copies ok (%s: %llu chunks sent compressed, %llu raw; %llu received compressed)\n", gsr_codec_name(pack.codec),
           (unsigned long long)pack.packed, (unsigned long long)pack.raw, (unsigned long long)packed_in);
    free(src);
    free(back);
    return 0;
}

/* A compressed frame that lies, in a copy to the device: the worker must end the session (no
 * crash, nothing leaked), never write past the chunk. */
static int lie(const char *mode, uint64_t ctx, uint32_t chunk) {
    const uint64_t size = 2ull * chunk;
    gsr_args out;
    expect(call(GSR_OP_MEM_ALLOC, ctx, &(gsr_args){.v = {size}, .nv = 1}, &out), 0, "alloc");
    uint64_t dptr = out.v[0];
    static uint8_t raw[GSR_CHUNK_BYTES_V2 + 1];
    memset(raw, 'z', sizeof raw);
    gsr_packer p;
    if (gsr_packer_init(&p, pack.codec ? pack.codec : GSR_CODEC_LZ4, pack.codec ? pack.level : 0, sizeof raw) != 0) die("packer");
    size_t m = gsr_pack(&p, raw, !strcmp(mode, "lieshort") ? chunk - 100 : chunk);
    if (m == 0) die("pack");
    /* Every lie keeps a well-formed header: only what the payload says is wrong. */
    if (!strcmp(mode, "lieover")) { /* declares one byte over the chunk (its bytes are a chunk + 1) */
        size_t m2 = gsr_pack(&p, raw, (size_t)chunk + 1);
        if (m2 == 0) die("pack over");
        m = m2;
    } else if (!strcmp(mode, "lieshort")) { /* declares a chunk, decompresses to 100 bytes less */
        uint32_t c = chunk;
        memcpy(p.buf, &c, 4);
    } else if (!strcmp(mode, "liegarbage")) { /* declares a chunk, the codec bytes are noise */
        for (size_t i = GSR_PACK_PREFIX; i < m; i++) p.buf[i] = (uint8_t)(i * 2654435761u >> 7);
    }
    uint64_t asked = !strcmp(mode, "lieleft") ? 100 : size; /* lieleft: a chunk declared where 100 bytes are left */
    if (!strcmp(mode, "lielane")) {
        send_op(GSR_OP_MEMCPY_HTOD, 0, ctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
        gsr_header d = {(uint32_t)m, GSR_OP_DATA, GSR_FLAG_COMPRESSED, 0, 0, 0};
        if (gsr_send_frame(&lanes[0], &d, p.buf, m, NULL, 0) != 0) die("lane data");
        /* Lane 1's chunk declares a chunk but holds 100 bytes less. */
        m = gsr_pack(&p, raw, chunk - 100);
        uint32_t c = chunk;
        memcpy(p.buf, &c, 4);
        d.length = (uint32_t)m;
        (void)gsr_send_frame(&lanes[1], &d, p.buf, m, NULL, 0);
    } else {
        send_op(GSR_OP_MEMCPY_HTOD, 0, ctx, &(gsr_args){.v = {dptr, asked, 0, 0}, .nv = 4});
        gsr_header d = {(uint32_t)m, GSR_OP_DATA, (uint16_t)(GSR_FLAG_COMPRESSED | GSR_FLAG_MORE), 0, 0, 0};
        (void)gsr_send_frame(&conn, &d, p.buf, m, NULL, 0);
    }
    expect_closed();
    gsr_packer_free(&p);
    printf("remote_raw %s: the session ended\n", mode);
    return 0;
}

/* Copies over 3 lanes at sizes around the chunk's and the stripe's boundaries, unaligned, one
 * wrapping every lane's ring; both ways, byte for byte; bounds refused with the lanes kept in
 * step (the data taken in, zeros sent); small copies on the control connection between. */
static int lane_copies(uint64_t ctx, uint32_t chunk) {
    const uint64_t cap = 15ull * chunk + 12345 + 4097;
    gsr_args out;
    expect(call(GSR_OP_MEM_ALLOC, ctx, &(gsr_args){.v = {cap}, .nv = 1}, &out), 0, "alloc");
    uint64_t dptr = out.v[0];
    uint8_t *src = malloc(cap), *back = malloc(cap);
    if (!src || !back) die("malloc");
    const uint64_t sizes[] = {chunk + 1ull, 2ull * chunk, 3ull * chunk - 1, 3ull * chunk, 3ull * chunk + 1, 15ull * chunk + 12345};
    const uint64_t offsets[] = {0, 4097};
    unsigned round = 0;
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++, round++) {
            uint64_t n = sizes[i], at = dptr + offsets[o];
            fill(src, n, round);
            expect(lanes_htod(ctx, at, src, n, chunk, round % 2), 0, "host to device over lanes");
            memset(back, 0xa5, n);
            expect(lanes_dtoh(ctx, at, back, n, chunk), 0, "device to host over lanes");
            if (memcmp(src, back, n) != 0) {
                fprintf(stderr, "remote_raw: FAIL: %llu bytes at +%llu over %u lanes differ\n", (unsigned long long)n,
                        (unsigned long long)offsets[o], nlanes);
                exit(1);
            }
            /* A small copy on the control connection between lane copies. */
            uint8_t small[100], small_back[100];
            fill(small, sizeof small, round + 7);
            send_op(GSR_OP_MEMCPY_HTOD, 0, ctx, &(gsr_args){.v = {at, sizeof small, 0, 0}, .nv = 4});
            gsr_header d = {sizeof small, GSR_OP_DATA, 0, 0, 0, 0};
            if (gsr_send_frame(&conn, &d, small, sizeof small, NULL, 0) != 0) die("small data");
            expect(reply(GSR_OP_MEMCPY_HTOD, NULL), 0, "small copy between lane copies");
            send_op(GSR_OP_MEMCPY_DTOH, 0, ctx, &(gsr_args){.v = {at, sizeof small, 0, 0}, .nv = 4});
            gsr_header h;
            if (gsr_recv_header(&conn, &h) != 0 || h.op != GSR_OP_DATA || h.length != sizeof small ||
                gsr_read_full(&conn, small_back, sizeof small) != 0)
                die("small copy back");
            expect(reply(GSR_OP_MEMCPY_DTOH, NULL), 0, "small copy back");
            if (memcmp(small, small_back, sizeof small) != 0) die("small copy between lane copies differs");
        }
    expect(call(GSR_OP_CTX_SYNCHRONIZE, ctx, &(gsr_args){0}, NULL), 0, "async lane copies: no deferred error");
    /* One byte past the allocation: refused, nothing written, the lanes still in step. */
    uint64_t n = 15ull * chunk + 12345;
    fill(src, n, 99);
    expect(lanes_htod(ctx, dptr, src, n, chunk, 0), 0, "a full copy");
    memset(back, 0x5a, n);
    expect(lanes_htod(ctx, dptr + cap - n + 1, back, n, chunk, 0), CUDA_ERROR_INVALID_VALUE, "a lane copy one byte past the allocation");
    expect(lanes_dtoh(ctx, dptr + cap - n + 1, back, n, chunk), CUDA_ERROR_INVALID_VALUE, "a lane read one byte past the allocation");
    for (uint64_t i = 0; i < n; i++)
        if (back[i] != 0) die("a refused lane read sent something other than zeros");
    /* A forged stream: refused the same way. */
    send_op(GSR_OP_MEMCPY_DTOH, 0, ctx, &(gsr_args){.v = {dptr, n, 0x0400000000000099ull, 1}, .nv = 4});
    for (unsigned lane = 0; lane < nlanes; lane++)
        for (uint64_t off = (uint64_t)lane * chunk; off < n; off += (uint64_t)chunk * nlanes) {
            uint32_t m = n - off > chunk ? chunk : (uint32_t)(n - off);
            gsr_header h;
            if (gsr_recv_header(&lanes[lane], &h) != 0 || h.op != GSR_OP_DATA || h.length != m || gsr_read_full(&lanes[lane], back + off, m) != 0)
                die("forged stream: lane data");
        }
    expect(reply(GSR_OP_MEMCPY_DTOH, NULL), CUDA_ERROR_INVALID_HANDLE, "a lane read on a forged stream");
    expect(lanes_dtoh(ctx, dptr, back, n, chunk), 0, "read after refusals");
    if (memcmp(src, back, n) != 0) die("a refused lane copy changed the memory");
    expect(call(GSR_OP_PING, 0, &(gsr_args){0}, NULL), 0, "ping after lane copies");
    free(src);
    free(back);
    printf("remote_raw lane copies ok (%u lanes, %u-byte chunks, %zu sizes x 2 offsets)\n", nlanes, chunk, sizeof sizes / sizeof sizes[0]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) die("usage: remote_raw MODE HOST:PORT KEYHEX");
    const char *mode = argv[1];
    uint8_t key[GSR_KEY_BYTES];
    if (gsr_key_from_hex(argv[3], key) != 0) die("key");
    endpoint = argv[2];
    conn.fd = gsr_connect(argv[2]);
    if (conn.fd < 0) die("connect");
    const char *pin_hex = getenv("GSR_RAW_TLS_SHA256");
    if (pin_hex) {
        static uint8_t pin_bytes[GSR_FINGERPRINT_BYTES];
        char why[256];
        if (gsr_fingerprint_from_hex(pin_hex, pin_bytes) != 0) die("GSR_RAW_TLS_SHA256");
        if (!(conn.tls = gsr_tls_connect(conn.fd, pin_bytes, why, sizeof why))) die(why);
        pin = pin_bytes;
    }
    if (!strcmp(mode, "nohello")) return 0;
    if (!strcmp(mode, "silent")) {
        sleep(3);
        return 0;
    }
    if (!strcmp(mode, "badkey")) {
        key[0] ^= 1;
        hello(key, 1, 1);
        expect(reply(GSR_OP_HELLO, NULL), CUDA_ERROR_NOT_PERMITTED, "hello with a wrong key");
        expect_closed();
        return 0;
    }
    if (!strcmp(mode, "oldversion")) {
        hello(key, 7, 9);
        expect(reply(GSR_OP_HELLO, NULL), CUDA_ERROR_NOT_SUPPORTED, "hello for versions 7..9");
        expect_closed();
        return 0;
    }
    /* GSR_RAW_VERSION=2: a version-2 client (1..2 offered); else a version-1 client, as the
     * clients before version 2 were (an old client must still work). */
    const char *version_env = getenv("GSR_RAW_VERSION");
    uint32_t version = version_env && (*version_env >= '1' && *version_env <= '4') && !version_env[1] ? (uint32_t)(*version_env - '0') : 1;
    hello(key, 1, version);
    gsr_args out;
    expect(reply(GSR_OP_HELLO, &out), 0, "hello");
    uint32_t chunk = version >= 2 ? GSR_CHUNK_BYTES_V2 : GSR_CHUNK_BYTES;
    if (!strcmp(mode, "compressed") || !strncmp(mode, "lie", 3)) {
        if (out.v[0] != 4 || version != 4) die("compression needs a version-4 session (GSR_RAW_VERSION=4)");
        const char *codec = getenv("GSR_RAW_CODEC");
        int zstd = codec && !strcmp(codec, "zstd");
        if (strcmp(mode, "lieungranted") != 0) compress_open(zstd ? GSR_CODEC_ZSTD : GSR_CODEC_LZ4, zstd ? 3 : 0);
        if (!strcmp(mode, "lielane")) { /* COMPRESS, then LANES_OPEN: both before any other request */
            lanes_open(2);
            for (unsigned i = 0; i < 2; i++) expect(lane_connect(i, key, lane_token, i), 0, "lane");
        }
        expect(call(GSR_OP_PRIMARY_CTX_RETAIN, 0, &(gsr_args){.v = {0}, .nv = 1}, &out), 0, "retain");
        return !strcmp(mode, "compressed") ? compressed_copies(out.v[0], chunk) : lie(mode, out.v[0], chunk);
    }
    if (!strncmp(mode, "lane", 4) && strcmp(mode, "laneslate") != 0) {
        if (version < 3) { /* a version-2 session: no lanes, the session goes on */
            expect(call(GSR_OP_LANES_OPEN, 0, &(gsr_args){.v = {2}, .nv = 1}, NULL), CUDA_ERROR_NOT_SUPPORTED, "lanes on a version-2 session");
            expect(call(GSR_OP_PING, 0, &(gsr_args){0}, NULL), 0, "ping after lanes refused");
            printf("remote_raw lanes refused on version %u\n", version);
            return 0;
        }
        unsigned n = lanes_open(!strcmp(mode, "lanes") ? 3 : 2);
        uint8_t wrong_key[GSR_KEY_BYTES], wrong_token[GSR_LANE_TOKEN_BYTES];
        memcpy(wrong_key, key, sizeof wrong_key);
        memcpy(wrong_token, lane_token, sizeof wrong_token);
        wrong_key[5] ^= 0x40;
        wrong_token[0] ^= 1;
        expect(lane_connect(0, key, lane_token, 0), 0, "lane 0");
        if (!strcmp(mode, "lanebadkey") || !strcmp(mode, "lanebadtoken") || !strcmp(mode, "lanebadindex")) {
            int got = !strcmp(mode, "lanebadkey")     ? lane_connect(1, wrong_key, lane_token, 1)
                      : !strcmp(mode, "lanebadtoken") ? lane_connect(1, key, wrong_token, 1)
                                                      : lane_connect(1, key, lane_token, 7);
            expect(got, CUDA_ERROR_NOT_PERMITTED, "a lane with a wrong key, token or index");
            expect_closed(); /* the session ends: a key gets one guess */
            return 0;
        }
        for (unsigned i = 1; i < n; i++) expect(lane_connect(i, key, lane_token, i), 0, "lane");
        expect(call(GSR_OP_PRIMARY_CTX_RETAIN, 0, &(gsr_args){.v = {0}, .nv = 1}, &out), 0, "retain");
        uint64_t lctx = out.v[0];
        /* A second LANES_OPEN: the listener is closed, refused, the session goes on. */
        expect(call(GSR_OP_LANES_OPEN, 0, &(gsr_args){.v = {2}, .nv = 1}, NULL), CUDA_ERROR_NOT_SUPPORTED, "a second lanes open");
        if (!strcmp(mode, "lanes")) return lane_copies(lctx, chunk);
        const uint64_t size = 6ull * chunk + 12345;
        expect(call(GSR_OP_MEM_ALLOC, lctx, &(gsr_args){.v = {size}, .nv = 1}, &out), 0, "alloc");
        uint64_t dptr = out.v[0];
        if (!strcmp(mode, "lanedrop")) { /* lane 1 closed with one of its three chunks sent */
            send_op(GSR_OP_MEMCPY_HTOD, 0, lctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
            gsr_header d = {chunk, GSR_OP_DATA, 0, 0, 0, 0};
            if (gsr_send_frame(&lanes[0], &d, payload, chunk, NULL, 0) != 0 || gsr_send_frame(&lanes[1], &d, payload, chunk, NULL, 0) != 0)
                die("lane data");
            gsr_link_close(&lanes[1]);
            expect_closed();
            return 0;
        }
        if (!strcmp(mode, "lanedropdtoh")) { /* lane 0 closed after its first chunk came */
            send_op(GSR_OP_MEMCPY_DTOH, 0, lctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
            gsr_header h;
            if (gsr_recv_header(&lanes[0], &h) != 0 || h.op != GSR_OP_DATA) die("first lane chunk");
            gsr_link_close(&lanes[0]);
            expect_closed();
            return 0;
        }
        if (!strcmp(mode, "lanebadframe")) { /* a chunk one byte short on lane 1: out of step */
            send_op(GSR_OP_MEMCPY_HTOD, 0, lctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
            gsr_header d = {chunk - 1, GSR_OP_DATA, 0, 0, 0, 0};
            (void)gsr_send_frame(&lanes[1], &d, payload, chunk - 1, NULL, 0);
            expect_closed();
            return 0;
        }
        die("unknown lane mode");
    }
    if (out.v[0] != version || out.v[1] != chunk) die("hello reply: not the version offered, or not its chunk");
    expect(call(GSR_OP_PRIMARY_CTX_RETAIN, 0, &(gsr_args){.v = {0}, .nv = 1}, &out), 0, "retain");
    uint64_t ctx = out.v[0];
    if (!strcmp(mode, "laneslate")) { /* lanes asked after another request: refused, the session goes on */
        expect(call(GSR_OP_LANES_OPEN, 0, &(gsr_args){.v = {2}, .nv = 1}, NULL), CUDA_ERROR_NOT_SUPPORTED, "lanes asked late");
        expect(call(GSR_OP_PING, 0, &(gsr_args){0}, NULL), 0, "ping after lanes refused");
        printf("remote_raw late lanes refused\n");
        return 0;
    }
    if (!strcmp(mode, "bigstray")) {
        /* A DATA frame of two call payloads' size outside any copy: a version 2+ header allows
         * DATA up to a chunk, the loop's buffer holds a call; refused before it is read (the
         * ASan worker overflowed its heap here before). */
        uint32_t n = 2 * GSR_MAX_PAYLOAD;
        if (n > sizeof payload) die("payload buffer");
        memset(payload, 'A', n);
        gsr_header d = {n, GSR_OP_DATA, 0, 0, 0, 0};
        (void)gsr_send_frame(&conn, &d, payload, n, NULL, 0); /* the worker may close first */
        expect_closed();
        return 0;
    }
    if (!strcmp(mode, "garbage")) {
        uint8_t junk[GSR_HEADER_BYTES];
        memset(junk, 0xff, sizeof junk); /* length 4 GiB - 1, unknown op */
        if (gsr_write_full(&conn, junk, sizeof junk) != 0) die("send junk");
        expect_closed();
        return 0;
    }
    if (!strcmp(mode, "badpayload")) {
        /* A payload of the wrong shape: an error reply, the session goes on. */
        gsr_header h = {3, GSR_OP_MEM_ALLOC, 0, next_id++, 0, ctx};
        if (gsr_send_frame(&conn, &h, "abc", 3, NULL, 0) != 0) die("send");
        expect(reply(GSR_OP_MEM_ALLOC, NULL), CUDA_ERROR_INVALID_VALUE, "short MEM_ALLOC");
        expect(call(GSR_OP_PING, 0, &(gsr_args){0}, NULL), 0, "ping after a bad payload");
        /* Forged handles and pointers. */
        expect(call(GSR_OP_MEM_FREE, ctx, &(gsr_args){.v = {0x7fff12345000ull}, .nv = 1}, NULL), CUDA_ERROR_INVALID_VALUE, "free of a foreign pointer");
        const uint8_t *fname = (const uint8_t *)"sleep";
        expect(call(GSR_OP_MODULE_GET_FUNCTION, ctx, &(gsr_args){.v = {ctx}, .nv = 1, .blob = {fname}, .blob_len = {5}, .nblob = 1}, NULL),
               CUDA_ERROR_INVALID_HANDLE, "a context id as a module");
        expect(call(GSR_OP_CTX_SYNCHRONIZE, ctx + 1000, &(gsr_args){0}, NULL), CUDA_ERROR_INVALID_CONTEXT, "a forged context");
        gsr_args launch = {.v = {0x0300000000000042ull, 1, 1, 1, 1, 1, 1, 0, 0}, .nv = 9, .nblob = 1};
        expect(call(GSR_OP_LAUNCH_KERNEL, ctx, &launch, NULL), CUDA_ERROR_INVALID_HANDLE, "a forged function");
        expect(call(GSR_OP_MEMCPY_DTOH, ctx, &(gsr_args){.v = {(uintptr_t)payload, 64, 0, 0}, .nv = 4}, NULL), CUDA_ERROR_INVALID_VALUE,
               "a copy from a worker-side address");
        expect(call(GSR_OP_PRIMARY_CTX_RELEASE, 0, &(gsr_args){.v = {3}, .nv = 1}, NULL), CUDA_ERROR_INVALID_CONTEXT, "release never retained");
        expect(call(GSR_OP_PING, 0, &(gsr_args){0}, NULL), 0, "ping after forged handles");
        /* A DATA frame outside a transfer: the stream is out of step, the worker drops it. */
        gsr_header d = {4, GSR_OP_DATA, 0, 0, 0, 0};
        if (gsr_send_frame(&conn, &d, "data", 4, NULL, 0) != 0) die("send");
        expect_closed();
        return 0;
    }
    /* Large enough for a pipelined copy that wraps the worker's ring (more than 4 chunks). */
    const uint64_t size = 6ull * chunk + 12345;
    expect(call(GSR_OP_MEM_ALLOC, ctx, &(gsr_args){.v = {size}, .nv = 1}, &out), 0, "alloc");
    uint64_t dptr = out.v[0];
    if (!strcmp(mode, "copies")) return copies(ctx, dptr, size, chunk);
    if (!strcmp(mode, "bigframe")) { /* a DATA frame over the session's chunk: dropped, nothing written */
        send_op(GSR_OP_MEMCPY_HTOD, 0, ctx, &(gsr_args){.v = {dptr, 2ull * chunk, 0, 0}, .nv = 4});
        if (chunk + 1 > sizeof payload) die("payload buffer");
        gsr_header d = {chunk + 1, GSR_OP_DATA, GSR_FLAG_MORE, 0, 0, 0};
        /* The worker may close before it has read it all: a failed send is fine. */
        (void)gsr_send_frame(&conn, &d, payload, chunk + 1, NULL, 0);
        expect_closed();
        return 0;
    }
    if (!strcmp(mode, "midhtod")) { /* gone with two chunks of six sent (pipelined copies in flight) */
        send_op(GSR_OP_MEMCPY_HTOD, 0, ctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
        gsr_header d = {chunk, GSR_OP_DATA, GSR_FLAG_MORE, 0, 0, 0};
        for (int i = 0; i < 2; i++)
            if (gsr_send_frame(&conn, &d, payload, chunk, NULL, 0) != 0) die("send data");
        return 0;
    }
    if (!strcmp(mode, "middtoh")) { /* gone while the worker sends (its ring's copies queued) */
        send_op(GSR_OP_MEMCPY_DTOH, 0, ctx, &(gsr_args){.v = {dptr, size, 0, 0}, .nv = 4});
        gsr_header h;
        if (gsr_recv_header(&conn, &h) != 0 || h.op != GSR_OP_DATA) die("first chunk");
        return 0;
    }
    if (!strcmp(mode, "midframe")) { /* gone inside a frame */
        gsr_header h = {100, GSR_OP_MEM_ALLOC, 0, next_id++, 0, ctx};
        if (gsr_send_frame(&conn, &h, payload, 10, NULL, 0) != 0) die("send");
        return 0;
    }
    if (!strcmp(mode, "stall")) { /* a frame started and never finished, the link kept: the worker's idle timeout ends it */
        gsr_header h = {100, GSR_OP_MEM_ALLOC, 0, next_id++, 0, ctx};
        if (gsr_send_frame(&conn, &h, payload, 10, NULL, 0) != 0) die("send");
        expect_closed();
        return 0;
    }
    die("unknown mode");
}
