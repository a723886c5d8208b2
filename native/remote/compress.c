/*
 * compress.c: LZ4 and zstd for copy chunks, loaded at run time (compress.h). The functions
 * used are declared here with their documented ABI (lz4.h 1.9, zstd.h 1.4+: stable since
 * long before either soname's .so.1); contexts stay opaque.
 */
#define _GNU_SOURCE
#include "compress.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lz4_api {
    int (*compress_default)(const char *src, char *dst, int src_size, int dst_capacity);
    int (*decompress_safe)(const char *src, char *dst, int compressed_size, int dst_capacity);
} lz4_api;

typedef struct zstd_api {
    void *(*createCCtx)(void);
    size_t (*freeCCtx)(void *cctx);
    size_t (*compressCCtx)(void *cctx, void *dst, size_t dst_capacity, const void *src, size_t src_size, int level);
    void *(*createDCtx)(void);
    size_t (*freeDCtx)(void *dctx);
    size_t (*decompressDCtx)(void *dctx, void *dst, size_t dst_capacity, const void *src, size_t src_size);
    unsigned (*isError)(size_t code);
} zstd_api;

/* Process-wide, written once under pthread_once each. */
static lz4_api lz4;
static zstd_api zstd;
static char lz4_problem[256], zstd_problem[256];
static pthread_once_t lz4_once = PTHREAD_ONCE_INIT, zstd_once = PTHREAD_ONCE_INIT;

/* Loads `soname` and fills n slots by name; on any failure `problem` says why (and the slots
 * stay NULL). */
static void load(const char *soname, const char *const *names, void **slots, size_t n, char *problem, size_t cap) {
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(problem, cap, "%s", e ? e : soname);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(lib, names[i]);
        if (!p) {
            snprintf(problem, cap, "%s lacks %s", soname, names[i]);
            for (size_t k = 0; k < n; k++) slots[k] = NULL;
            dlclose(lib);
            return;
        }
        slots[i] = p;
    }
}

static void load_lz4(void) {
    static const char *const names[] = {"LZ4_compress_default", "LZ4_decompress_safe"};
    void *slots[2] = {0};
    load("liblz4.so.1", names, slots, 2, lz4_problem, sizeof lz4_problem);
    *(void **)&lz4.compress_default = slots[0];
    *(void **)&lz4.decompress_safe = slots[1];
}

static void load_zstd(void) {
    static const char *const names[] = {"ZSTD_createCCtx", "ZSTD_freeCCtx", "ZSTD_compressCCtx", "ZSTD_createDCtx",
                                        "ZSTD_freeDCtx", "ZSTD_decompressDCtx", "ZSTD_isError"};
    void *slots[7] = {0};
    load("libzstd.so.1", names, slots, 7, zstd_problem, sizeof zstd_problem);
    *(void **)&zstd.createCCtx = slots[0];
    *(void **)&zstd.freeCCtx = slots[1];
    *(void **)&zstd.compressCCtx = slots[2];
    *(void **)&zstd.createDCtx = slots[3];
    *(void **)&zstd.freeDCtx = slots[4];
    *(void **)&zstd.decompressDCtx = slots[5];
    *(void **)&zstd.isError = slots[6];
}

const char *gsr_codec_name(unsigned codec) {
    return codec == GSR_CODEC_NONE ? "none" : codec == GSR_CODEC_LZ4 ? "lz4" : codec == GSR_CODEC_ZSTD ? "zstd" : "?";
}

int gsr_codec_available(unsigned codec, const char **why) {
    if (codec == GSR_CODEC_NONE) return 1;
    if (codec == GSR_CODEC_LZ4) {
        (void)pthread_once(&lz4_once, load_lz4);
        if (lz4.compress_default) return 1;
        if (why) *why = lz4_problem;
        return 0;
    }
    if (codec == GSR_CODEC_ZSTD) {
        (void)pthread_once(&zstd_once, load_zstd);
        if (zstd.compressCCtx) return 1;
        if (why) *why = zstd_problem;
        return 0;
    }
    if (why) *why = "unknown codec";
    return 0;
}

uint32_t gsr_codecs_available(void) {
    uint32_t mask = 0;
    for (unsigned c = 0; c < GSR_CODEC_COUNT; c++)
        if (gsr_codec_available(c, NULL)) mask |= 1u << c;
    return mask;
}

int gsr_codec_parse(const char *v, unsigned *codec, int *level) {
    *codec = GSR_CODEC_NONE;
    *level = 0;
    if (!v || !*v || !strcmp(v, "off")) return 0;
    if (!strcmp(v, "lz4")) {
        *codec = GSR_CODEC_LZ4;
        return 0;
    }
    if (strncmp(v, "zstd", 4) != 0) return -1;
    *codec = GSR_CODEC_ZSTD;
    *level = GSR_ZSTD_LEVEL_DEFAULT;
    if (v[4] == 0) return 0;
    if (v[4] != ':' || v[5] < '0' || v[5] > '9') return -1;
    char *end = NULL;
    long n = strtol(v + 5, &end, 10);
    if (*end || n < 1 || n > GSR_ZSTD_LEVEL_MAX) return -1;
    *level = (int)n;
    return 0;
}

int gsr_packer_init(gsr_packer *p, unsigned codec, int level, size_t cap) {
    memset(p, 0, sizeof *p);
    if (codec == GSR_CODEC_NONE || !gsr_codec_available(codec, NULL) || cap < GSR_PACK_PREFIX) return -1;
    if (!(p->buf = malloc(cap))) return -1;
    p->codec = codec;
    p->level = level;
    p->cap = cap;
    return 0;
}

void gsr_packer_free(gsr_packer *p) {
    if (p->cctx) (void)zstd.freeCCtx(p->cctx);
    if (p->dctx) (void)zstd.freeDCtx(p->dctx);
    free(p->buf);
    memset(p, 0, sizeof *p);
}

static void put_le32(uint8_t *out, uint32_t v) {
    for (int i = 0; i < 4; i++) out[i] = (uint8_t)(v >> (8 * i));
}

/* n bytes of src compressed into p->buf after the prefix, at most `limit` bytes: their count, or
 * 0 when they do not fit (or the codec failed). */
static size_t squeeze(gsr_packer *p, const void *src, size_t n, size_t limit) {
    if (p->codec == GSR_CODEC_LZ4) {
        int r = lz4.compress_default(src, (char *)p->buf + GSR_PACK_PREFIX, (int)n, (int)limit);
        return r > 0 && (size_t)r <= limit ? (size_t)r : 0;
    }
    if (p->codec == GSR_CODEC_ZSTD) {
        if (!p->cctx) p->cctx = zstd.createCCtx();
        if (!p->cctx) return 0;
        size_t r = zstd.compressCCtx(p->cctx, p->buf + GSR_PACK_PREFIX, limit, src, n, p->level);
        return !zstd.isError(r) && r <= limit ? r : 0;
    }
    return 0;
}

size_t gsr_pack(gsr_packer *p, const void *src, size_t n) {
    if (p->codec == GSR_CODEC_NONE || n < GSR_PACK_MIN_BYTES || n > p->cap || n > INT32_MAX) {
        p->raw++;
        return 0;
    }
    /* A large chunk's first GSR_PACK_PROBE_BYTES first: incompressible data (random, already
     * compressed) then costs a 64th of a chunk's compression, not a whole one, before it goes raw. */
    if (n >= 4 * GSR_PACK_PROBE_BYTES &&
        squeeze(p, src, GSR_PACK_PROBE_BYTES, GSR_PACK_PROBE_BYTES - GSR_PACK_PROBE_BYTES / 10 - GSR_PACK_PREFIX) == 0) {
        p->raw++;
        return 0;
    }
    /* At most 90% of the raw size, prefix included: a codec that cannot fit gives up early. */
    size_t got = squeeze(p, src, n, n - n / 10 - GSR_PACK_PREFIX);
    if (got == 0) {
        p->raw++;
        return 0;
    }
    put_le32(p->buf, (uint32_t)n);
    p->packed++;
    return GSR_PACK_PREFIX + got;
}

uint32_t gsr_packed_raw_len(const uint8_t *payload, size_t len) {
    if (len <= GSR_PACK_PREFIX) return 0;
    return (uint32_t)payload[0] | (uint32_t)payload[1] << 8 | (uint32_t)payload[2] << 16 | (uint32_t)payload[3] << 24;
}

int gsr_unpack(gsr_packer *p, const uint8_t *payload, size_t len, void *dst, size_t expect) {
    uint32_t raw = gsr_packed_raw_len(payload, len);
    if (raw == 0 || raw != expect || expect > p->cap || expect > INT32_MAX) return -1;
    const uint8_t *src = payload + GSR_PACK_PREFIX;
    size_t n = len - GSR_PACK_PREFIX;
    if (p->codec == GSR_CODEC_LZ4) {
        if (n > INT32_MAX) return -1;
        int r = lz4.decompress_safe((const char *)src, dst, (int)n, (int)expect);
        if (r < 0 || (size_t)r != expect) return -1;
        p->unpacked++;
        return 0;
    }
    if (p->codec == GSR_CODEC_ZSTD) {
        if (!p->dctx) p->dctx = zstd.createDCtx();
        if (!p->dctx) return -1;
        size_t r = zstd.decompressDCtx(p->dctx, dst, expect, src, n);
        if (zstd.isError(r) || r != expect) return -1;
        p->unpacked++;
        return 0;
    }
    return -1;
}
