/*
 * test_proto_fuzz.c: the remote codec (proto.c) against seeded random and mutated input,
 * under ASan+UBSan (no clang here, so no libFuzzer: a seeded generator, reproducible with
 * GSR_FUZZ_SEED=<seed> and GSR_FUZZ_ROUNDS=<n>). Checks:
 *  - every op's schema fits gsr_args, and valid args round-trip encode -> decode exactly;
 *  - random headers decode without a crash, and what passes is within the documented caps;
 *  - random and mutated payloads of every op decode without reading out of bounds, and
 *    whatever decodes re-encodes to the very same bytes (nothing is silently skipped);
 *  - compressed DATA payloads (compress.c, each codec whose library loads here): what is packed
 *    unpacks to the same bytes, only into exactly its declared size; mutated, truncated,
 *    relabelled and random payloads are refused or decompress to exactly the size asked,
 *    never more; GSR_FLAG_COMPRESSED is refused on anything but DATA.
 * The buffers are heap blocks of the exact length, so ASan sees any read one byte past.
 */
#include "../compress.h"
#include "../proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static int failures;
static void fuzz_compressed(long rounds);

/* Counts and reports a failed check, and carries on: one run shows every failure. */
__attribute__((format(printf, 3, 4))) static void check_at(int line, int ok, const char *fmt, ...) {
    if (ok) return;
    failures++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_proto_fuzz: FAIL line %d: ", line);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
#define CHECK(cond, ...) check_at(__LINE__, (cond) != 0, __VA_ARGS__)

static unsigned ops[64];
static unsigned nops;

#define COLLECT(name, number, request, reply) ops[nops++] = number;

static void random_args(unsigned op, int reply, gsr_args *a, uint8_t *blobs, size_t blob_cap) {
    const char *schema = gsr_schema(op, reply);
    memset(a, 0, sizeof *a);
    size_t used = 0;
    for (const char *f = schema; *f; f++) {
        if (*f == 'b') {
            size_t n = rnd() % 64;
            if (n > blob_cap - used) n = 0;
            for (size_t i = 0; i < n; i++) blobs[used + i] = (uint8_t)rnd();
            a->blob[a->nblob] = blobs + used;
            a->blob_len[a->nblob++] = n;
            used += n;
        } else if (*f == 'q') {
            a->v[a->nv++] = rnd();
        } else if (*f == 'i') {
            a->v[a->nv++] = (uint64_t)(int64_t)(int32_t)rnd();
        } else {
            a->v[a->nv++] = (uint32_t)rnd();
        }
    }
}

/* Decodes a heap copy of exactly `len` bytes; if it decodes, it must re-encode identically. */
static void decode_and_check(unsigned op, int reply, const uint8_t *bytes, size_t len) {
    uint8_t *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, bytes, len);
    gsr_args a;
    gsr_error e = gsr_decode(op, reply, copy, len, &a);
    if (e == GSR_OK) {
        uint8_t *out = malloc(len + 16);
        gsr_writer w;
        gsr_writer_init(&w, out, len + 16);
        gsr_encode(op, reply, &a, &w);
        CHECK(!w.bad && w.len == len && memcmp(out, copy, len) == 0, "op %u reply %d: %zu bytes decode but re-encode differently", op, reply, len);
        free(out);
    }
    free(copy);
}

int main(void) {
    const char *seed_env = getenv("GSR_FUZZ_SEED");
    const char *rounds_env = getenv("GSR_FUZZ_ROUNDS");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x9e3779b97f4a7c15ull;
    long rounds = rounds_env ? strtol(rounds_env, NULL, 10) : 20000;
    rng_state = seed ? seed : 1;
    GSR_OP_LIST(COLLECT)

    /* Schemas fit, names exist. */
    for (unsigned i = 0; i < nops; i++) {
        CHECK(gsr_op_name(ops[i]) != NULL, "op %u has no name", ops[i]);
        for (int reply = 0; reply < 2; reply++) {
            const char *s = gsr_schema(ops[i], reply);
            if (s == NULL) continue;
            unsigned nb = 0, nv = 0;
            for (const char *f = s; *f; f++) *f == 'b' ? nb++ : nv++;
            CHECK(nv <= GSR_MAX_SCALARS && nb <= GSR_MAX_BLOBS, "op %u schema %s too big", ops[i], s);
        }
    }
    CHECK(gsr_op_name(0) == NULL && gsr_op_name(9999) == NULL, "unknown ops have names");

    uint8_t blobs[512];
    uint8_t buf[1024];
    for (long round = 0; round < rounds; round++) {
        unsigned op = ops[rnd() % nops];
        int reply = (int)(rnd() & 1);
        if (gsr_schema(op, reply) == NULL) {
            gsr_args a;
            CHECK(gsr_decode(op, reply, buf, 0, &a) == GSR_ERR_OP, "raw op %u decodes by schema", op);
            continue;
        }
        /* Valid args round-trip. */
        gsr_args a, b;
        random_args(op, reply, &a, blobs, sizeof blobs);
        gsr_writer w;
        gsr_writer_init(&w, buf, sizeof buf);
        gsr_encode(op, reply, &a, &w);
        CHECK(!w.bad, "op %u encode overflowed", op);
        CHECK(gsr_decode(op, reply, buf, w.len, &b) == GSR_OK, "op %u: own encoding rejected", op);
        CHECK(a.nv == b.nv && a.nblob == b.nblob && memcmp(a.v, b.v, sizeof a.v) == 0, "op %u scalars differ", op);
        for (unsigned i = 0; i < a.nblob && i < b.nblob; i++)
            CHECK(a.blob_len[i] == b.blob_len[i] && (a.blob_len[i] == 0 || memcmp(a.blob[i], b.blob[i], a.blob_len[i]) == 0), "op %u blob %u differs", op, i);
        /* A writer too small fails cleanly. */
        if (w.len > 0) {
            gsr_writer small;
            gsr_writer_init(&small, buf + 512, w.len - 1);
            gsr_encode(op, reply, &a, &small);
            CHECK(small.bad && small.len <= w.len - 1, "op %u: overflow not reported", op);
        }
        /* Mutations of the valid encoding: flips, truncation, extension. */
        size_t len = w.len;
        switch (rnd() % 4) {
        case 0:
            if (len) buf[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
            break;
        case 1:
            if (len) len = rnd() % len;
            break;
        case 2: {
            size_t extra = rnd() % 16;
            for (size_t i = 0; i < extra && len < sizeof buf; i++) buf[len++] = (uint8_t)rnd();
            break;
        }
        default: /* a blob length or count byte set huge */
            if (len >= 4) {
                size_t at = rnd() % (len - 3);
                buf[at + 3] = 0xff;
            }
            break;
        }
        decode_and_check(op, reply, buf, len);
        /* Pure noise. */
        size_t nlen = rnd() % 96;
        for (size_t i = 0; i < nlen; i++) buf[i] = (uint8_t)rnd();
        decode_and_check(op, reply, buf, nlen);
        /* Headers: random bytes and near-valid ones. */
        uint8_t hb[GSR_HEADER_BYTES];
        for (size_t i = 0; i < sizeof hb; i++) hb[i] = (uint8_t)rnd();
        if (rnd() & 1) {
            gsr_header h = {(uint32_t)(rnd() % ((op == GSR_OP_DATA ? GSR_MAX_DATA : GSR_MAX_PAYLOAD) + 2)), (uint16_t)op, (uint16_t)(rnd() % 16), (uint32_t)rnd(), (int32_t)rnd(), rnd()};
            gsr_header_encode(&h, hb);
        }
        gsr_header h;
        gsr_error he = gsr_header_decode(hb, &h);
        if (he == GSR_OK) {
            CHECK(h.length <= (h.op == GSR_OP_DATA ? GSR_MAX_DATA : GSR_MAX_PAYLOAD) && gsr_op_name(h.op) && !(h.flags & ~GSR_FLAGS_KNOWN), "bad header accepted");
            uint8_t again[GSR_HEADER_BYTES];
            gsr_header_encode(&h, again);
            CHECK(memcmp(again, hb, sizeof hb) == 0, "header does not round-trip");
        }
    }
    fuzz_compressed(rounds);
    if (failures) {
        fprintf(stderr, "test_proto_fuzz: %d failures (seed %#llx)\n", failures, (unsigned long long)seed);
        return 1;
    }
    printf("test_proto_fuzz: ok (%ld rounds, seed %#llx)\n", rounds, (unsigned long long)seed);
    return 0;
}

/* Text-like: runs from a small alphabet, sometimes noise (some chunks must not pay). */
static void fill_chunk(uint8_t *b, size_t n) {
    int noise = rnd() % 4 == 0;
    unsigned alphabet = 1 + (unsigned)(rnd() % 8);
    for (size_t i = 0; i < n;) {
        size_t run = 1 + rnd() % 64;
        uint8_t v = noise ? 0 : (uint8_t)('a' + rnd() % alphabet);
        for (size_t k = 0; k < run && i < n; k++, i++) b[i] = noise ? (uint8_t)rnd() : v;
    }
}

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* One unpack into a heap block of exactly `expect` bytes (ASan sees a byte past it): 0 or -1,
 * and 0 only when the declared size is `expect`. */
static int unpack_exact(gsr_packer *p, const uint8_t *payload, size_t len, size_t expect) {
    uint8_t *frame = malloc(len ? len : 1), *out = malloc(expect ? expect : 1);
    if (!frame || !out) abort();
    memcpy(frame, payload, len);
    int rc = gsr_unpack(p, frame, len, out, expect);
    CHECK(rc == 0 || rc == -1, "unpack returned %d", rc);
    CHECK(rc != 0 || gsr_packed_raw_len(frame, len) == expect, "unpack accepted a size it was not asked");
    free(frame);
    free(out);
    return rc;
}

static void fuzz_compressed(long rounds) {
    /* The flag belongs to DATA frames only. */
    uint8_t hb[GSR_HEADER_BYTES];
    gsr_header h = {8, GSR_OP_MEM_ALLOC, GSR_FLAG_COMPRESSED, 1, 0, 0}, back;
    gsr_header_encode(&h, hb);
    CHECK(gsr_header_decode(hb, &back) == GSR_ERR_FLAGS, "COMPRESSED accepted on a request");
    h.op = GSR_OP_DATA;
    gsr_header_encode(&h, hb);
    CHECK(gsr_header_decode(hb, &back) == GSR_OK && back.flags == GSR_FLAG_COMPRESSED, "COMPRESSED refused on DATA");
    const size_t cap = 64u << 10;
    uint8_t *raw = malloc(cap), *copy = malloc(cap);
    if (!raw || !copy) abort();
    long n_rounds = rounds / 4 > 200 ? rounds / 4 : 200;
    for (unsigned codec = GSR_CODEC_LZ4; codec < GSR_CODEC_COUNT; codec++) {
        const char *why = NULL;
        if (!gsr_codec_available(codec, &why)) {
            printf("test_proto_fuzz: %s not here (%s): its frames not fuzzed\n", gsr_codec_name(codec), why);
            continue;
        }
        gsr_packer p;
        CHECK(gsr_packer_init(&p, codec, codec == GSR_CODEC_ZSTD ? 1 + (int)(rnd() % 5) : 0, cap) == 0, "packer");
        long refused = 0, accepted = 0;
        for (long r = 0; r < n_rounds; r++) {
            size_t n = GSR_PACK_MIN_BYTES + rnd() % (cap - GSR_PACK_MIN_BYTES);
            fill_chunk(raw, n);
            size_t m = gsr_pack(&p, raw, n);
            if (m == 0) { /* did not pay: never for a run-length text */
                continue;
            }
            CHECK(m <= n - n / 10 && gsr_packed_raw_len(p.buf, m) == n, "%s: a frame of %zu for %zu bytes", gsr_codec_name(codec), m, n);
            memcpy(copy, p.buf, m);
            /* Exactly its size: the same bytes. Any other size: refused before decompressing. */
            uint8_t *out = malloc(n);
            if (!out) abort();
            CHECK(gsr_unpack(&p, copy, m, out, n) == 0 && memcmp(out, raw, n) == 0, "%s: %zu bytes do not round-trip", gsr_codec_name(codec), n);
            free(out);
            CHECK(unpack_exact(&p, copy, m, n - 1) == -1 && unpack_exact(&p, copy, m, n + 1) == -1, "%s: another size accepted", gsr_codec_name(codec));
            /* A lie about the size: declared smaller, larger, zero, huge. */
            uint32_t lies[] = {(uint32_t)n - 1, (uint32_t)n + 1, 0, UINT32_MAX, (uint32_t)(rnd() % cap)};
            for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
                put_le32(copy, lies[i]);
                size_t expect = lies[i] <= cap && lies[i] > 0 ? lies[i] : n;
                if (unpack_exact(&p, copy, m, expect) == 0) CHECK(lies[i] == n, "%s: a lying size decompressed", gsr_codec_name(codec));
            }
            put_le32(copy, (uint32_t)n);
            /* Mutations of the codec's bytes: refused, or exactly n bytes (never more). */
            size_t len = m;
            switch (rnd() % 4) {
            case 0:
                for (int k = 0; k < 1 + (int)(rnd() % 4); k++) copy[GSR_PACK_PREFIX + rnd() % (m - GSR_PACK_PREFIX)] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1:
                len = rnd() % m;
                break;
            case 2:
                for (size_t i = GSR_PACK_PREFIX; i < m; i++) copy[i] = (uint8_t)rnd();
                break;
            default: {
                size_t extra = 1 + rnd() % 64;
                if (m + extra <= cap) {
                    for (size_t i = 0; i < extra; i++) copy[m + i] = (uint8_t)rnd();
                    len = m + extra;
                }
                break;
            }
            }
            if (unpack_exact(&p, copy, len, n) == 0)
                accepted++;
            else
                refused++;
        }
        CHECK(p.packed > 0, "%s compressed nothing", gsr_codec_name(codec));
        CHECK(refused > 0, "%s refused no mutated frame", gsr_codec_name(codec));
        printf("test_proto_fuzz: %s frames: %llu packed, mutations %ld refused, %ld decompressed to exactly the size\n", gsr_codec_name(codec),
               (unsigned long long)p.packed, refused, accepted);
        gsr_packer_free(&p);
    }
    free(raw);
    free(copy);
}
