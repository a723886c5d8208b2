/*
 * compress.h: optional compression of copy chunks (docs/remote.md "Compression", protocol
 * version 4). LZ4 and zstd are loaded at run time (dlopen of liblz4.so.1, libzstd.so.1), with
 * the few functions used declared here: neither end needs them to build or to run, and a
 * codec whose library is missing is simply not offered.
 *
 * A compressed DATA frame (GSR_FLAG_COMPRESSED) carries {u32 raw length, the codec's bytes}.
 * The raw length is checked against what the receiver expects (never over the session's
 * chunk) before anything is decompressed, into a buffer of exactly that size; a frame whose
 * bytes do not decompress to exactly that is refused (the session ends).
 */
#ifndef GSR_COMPRESS_H
#define GSR_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#define GSR_CODEC_NONE 0u
#define GSR_CODEC_LZ4 1u
#define GSR_CODEC_ZSTD 2u
#define GSR_CODEC_COUNT 3u
/* The u32 raw length before a compressed frame's codec bytes. */
#define GSR_PACK_PREFIX 4u
/* Chunks under this go raw (not worth a codec call); a chunk goes compressed only when its
 * frame is at most 90% of the raw size. */
#define GSR_PACK_MIN_BYTES 4096u
/* A chunk of 4 times this or more is tried on its first GSR_PACK_PROBE_BYTES first: when they do
 * not fit in 90%, the chunk goes raw without the whole attempt. */
#define GSR_PACK_PROBE_BYTES (64u * 1024u)
#define GSR_ZSTD_LEVEL_DEFAULT 1
#define GSR_ZSTD_LEVEL_MAX 19

/* "lz4", "zstd", "none" (any other number: "?"). */
const char *gsr_codec_name(unsigned codec);
/* Whether the codec's library loaded in this process (loaded once, on first ask); when not,
 * *why (if given) says what failed. GSR_CODEC_NONE is always available. */
int gsr_codec_available(unsigned codec, const char **why);
/* The codecs this process can use, as a mask of 1 << codec (GSR_CODEC_NONE's bit included). */
uint32_t gsr_codecs_available(void);
/* GPUSHARE_REMOTE_COMPRESS's value: NULL, "" or "off" -> NONE; "lz4"; "zstd" or "zstd:LEVEL"
 * (1..GSR_ZSTD_LEVEL_MAX, default GSR_ZSTD_LEVEL_DEFAULT). 0, or -1 for anything else. */
int gsr_codec_parse(const char *v, unsigned *codec, int *level);

/* One end's state for one connection (the control one or a lane): the codec, its contexts
 * and a scratch buffer of `cap` bytes (a frame's payload, compressed or to decompress). */
typedef struct gsr_packer {
    unsigned codec;
    int level;
    void *cctx, *dctx; /* zstd's, made on first use */
    uint8_t *buf;
    size_t cap;
    /* Chunks sent compressed and raw, and received compressed (for the logs and the tests). */
    uint64_t packed, raw, unpacked;
} gsr_packer;

/* 0, or -1 (no memory, or the codec is not available): p is then {0}. cap: the largest chunk. */
int gsr_packer_init(gsr_packer *p, unsigned codec, int level, size_t cap);
void gsr_packer_free(gsr_packer *p);
/* Compresses n bytes of src into p->buf as a compressed frame's payload: its length, or 0 when
 * compression does not pay (the chunk goes raw). */
size_t gsr_pack(gsr_packer *p, const void *src, size_t n);
/* A compressed frame's payload (len bytes): its declared raw length, or 0 when the payload is
 * too short to say one. */
uint32_t gsr_packed_raw_len(const uint8_t *payload, size_t len);
/* Decompresses a compressed frame's payload into exactly `expect` bytes at dst: 0, or -1 when
 * the declared raw length is not `expect`, or the bytes do not decompress to exactly that. */
int gsr_unpack(gsr_packer *p, const uint8_t *payload, size_t len, void *dst, size_t expect);

#endif /* GSR_COMPRESS_H */
