/*
 * codec_speed.c: one core's compression and decompression speed of 4 MiB chunks (compress.c,
 * the remote copies' codecs), zeros, text-like runs and random bytes, for bench_compress.sh:
 * what a link must be slower than for compression to pay. Prints a table row per codec and data.
 *
 *   codec_speed [MIB]   MIB MiB per measurement (default 256)
 */
#define _POSIX_C_SOURCE 200809L
#include "../compress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    const size_t chunk = 4u << 20;
    size_t total = (argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 256) << 20;
    uint8_t *src = malloc(chunk), *out = malloc(chunk);
    if (!src || !out || total < chunk) return 2;
    static const char *const kinds[] = {"zeros", "text-like", "random"};
    struct { unsigned codec; int level; } codecs[] = {{GSR_CODEC_LZ4, 0}, {GSR_CODEC_ZSTD, 1}, {GSR_CODEC_ZSTD, 3}};
    printf("| codec | data | frame / raw | compress GB/s (one core; raw: the 64 KiB probe's cost) | decompress GB/s |\n| --- | --- | --- | --- | --- |\n");
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        gsr_packer p;
        if (gsr_packer_init(&p, codecs[c].codec, codecs[c].level, chunk) != 0) {
            printf("| %s | - | not here | | |\n", gsr_codec_name(codecs[c].codec));
            continue;
        }
        for (int k = 0; k < 3; k++) {
            uint64_t x = 88172645463325252ull;
            for (size_t i = 0; i < chunk; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                src[i] = k == 0 ? 0 : k == 1 ? (uint8_t)((i / 97) % 5 == 0 ? 'a' + (i % 7) : ' ') : (uint8_t)(x >> 24);
            }
            size_t n = total / chunk, m = 0;
            double t0 = now_s();
            for (size_t i = 0; i < n; i++) m = gsr_pack(&p, src, chunk);
            double tc = now_s() - t0, td = 0;
            if (m > 0) {
                t0 = now_s();
                for (size_t i = 0; i < n; i++)
                    if (gsr_unpack(&p, p.buf, m, out, chunk) != 0 || (i == 0 && memcmp(out, src, chunk) != 0)) return 1;
                td = now_s() - t0;
            }
            char ratio[32], level[16] = "", dec[32] = "-";
            if (m > 0) snprintf(ratio, sizeof ratio, "%.4f", (double)m / chunk); else snprintf(ratio, sizeof ratio, "raw (> 0.9)");
            if (m > 0) snprintf(dec, sizeof dec, "%.2f", (double)total / td / 1e9);
            if (codecs[c].codec == GSR_CODEC_ZSTD) snprintf(level, sizeof level, ":%d", codecs[c].level);
            printf("| %s%s | %s | %s | %.2f | %s |\n", gsr_codec_name(codecs[c].codec), level, kinds[k], ratio, (double)total / tc / 1e9, dec);
        }
        gsr_packer_free(&p);
    }
    free(src);
    free(out);
    return 0;
}
