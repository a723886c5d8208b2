/*
 * md2.c: MD2 as RFC 1319 defines it (section 3: padding, checksum, the 18-round transform over
 * a 48-byte block with the permutation S of pi's digits, table from section 3.2), and HMAC
 * over it (RFC 2104, block size 16). Written from the RFCs; checked against RFC 1319's test
 * suite (remote/tests/test_md2.c).
 */
#include "md2.h"

#include <string.h>

static const uint8_t S[256] = {
     41,  46,  67, 201, 162, 216, 124,   1,  61,  54,  84, 161, 236, 240,   6,  19,
     98, 167,   5, 243, 192, 199, 115, 140, 152, 147,  43, 217, 188,  76, 130, 202,
     30, 155,  87,  60, 253, 212, 224,  22, 103,  66, 111,  24, 138,  23, 229,  18,
    190,  78, 196, 214, 218, 158, 222,  73, 160, 251, 245, 142, 187,  47, 238, 122,
    169, 104, 121, 145,  21, 178,   7,  63, 148, 194,  16, 137,  11,  34,  95,  33,
    128, 127,  93, 154,  90, 144,  50,  39,  53,  62, 204, 231, 191, 247, 151,   3,
    255,  25,  48, 179,  72, 165, 181, 209, 215,  94, 146,  42, 172,  86, 170, 198,
     79, 184,  56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116,   4, 241,
     69, 157, 112,  89, 100, 113, 135,  32, 134,  91, 207, 101, 230,  45, 168,   2,
     27,  96,  37, 173, 174, 176, 185, 246,  28,  70,  97, 105,  52,  64, 126,  15,
     85,  71, 163,  35, 221,  81, 175,  58, 195,  92, 249, 206, 186, 197, 234,  38,
     44,  83,  13, 110, 133,  40, 132,   9, 211, 223, 205, 244,  65, 129,  77,  82,
    106, 220,  55, 200, 108, 193, 171, 250,  36, 225, 123,   8,  12, 189, 177,  74,
    120, 136, 149, 139, 227,  99, 232, 109, 233, 203, 213, 254,  59,   0,  29,  57,
    242, 239, 183,  14, 102,  88, 208, 228, 166, 119, 114, 248, 235, 117,  75,  10,
     49,  68,  80, 180, 143, 237,  31,  26, 219, 153, 141,  51, 159,  17, 131,  20,
};

void gsr_md2_init(gsr_md2 *m) { memset(m, 0, sizeof *m); }

/* One input byte: into the block and the checksum; a full block runs the transform. */
static void md2_byte(gsr_md2 *m, uint8_t b) {
    uint8_t j = m->buffered;
    m->x[16 + j] = b;
    m->x[32 + j] = (uint8_t)(m->x[j] ^ b);
    m->last = m->checksum[j] ^= S[b ^ m->last];
    m->buffered = (uint8_t)((j + 1) & 15);
    if (m->buffered) return;
    uint8_t t = 0;
    for (int round = 0; round < 18; round++) {
        for (int k = 0; k < 48; k++) t = m->x[k] ^= S[t];
        t = (uint8_t)(t + round);
    }
}

void gsr_md2_update(gsr_md2 *m, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) md2_byte(m, p[i]);
}

void gsr_md2_final(gsr_md2 *m, uint8_t digest[16]) {
    uint8_t pad = (uint8_t)(16 - m->buffered);
    for (uint8_t i = 0; i < pad; i++) md2_byte(m, pad);
    uint8_t checksum[16];
    memcpy(checksum, m->checksum, sizeof checksum); /* appended: it changes as it is fed */
    gsr_md2_update(m, checksum, sizeof checksum);
    memcpy(digest, m->x, 16);
}

void gsr_hmac_md2(const uint8_t key[16], const void *const *parts, const size_t *lens, size_t nparts, uint8_t digest[16]) {
    uint8_t pad[16], inner[16];
    gsr_md2 m;
    gsr_md2_init(&m);
    for (int i = 0; i < 16; i++) pad[i] = key[i] ^ 0x36;
    gsr_md2_update(&m, pad, sizeof pad);
    for (size_t i = 0; i < nparts; i++) gsr_md2_update(&m, parts[i], lens[i]);
    gsr_md2_final(&m, inner);
    gsr_md2_init(&m);
    for (int i = 0; i < 16; i++) pad[i] = key[i] ^ 0x5c;
    gsr_md2_update(&m, pad, sizeof pad);
    gsr_md2_update(&m, inner, sizeof inner);
    gsr_md2_final(&m, digest);
}
