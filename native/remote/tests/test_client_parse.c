/*
 * test_client_parse.c: the client's parsers of what the CUDA runtime hands it, under ASan and
 * UBSan: MD2 against RFC 1319's test suite (the integrity check's hash, md2.c), and kernel
 * parameter layouts read from a cubin inside a fatbin (client_kparams.c): a well-formed image
 * gives every parameter's offset and size, a gap or an unknown attribute format gives none, and
 * every truncation and many random corruptions of the image are read without a byte outside it.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "client.h"
#include "md2.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <string.h>

static int failures;

static void check_at(int line, int ok, const char *what) {
    if (ok) return;
    printf("test_client_parse: FAIL line %d: %s\n", line, what);
    failures++;
}
#define CHECK(cond) check_at(__LINE__, (cond) != 0, #cond)

static void md2_hex(const char *msg, char out[33]) {
    gsr_md2 m;
    uint8_t d[16];
    gsr_md2_init(&m);
    gsr_md2_update(&m, msg, strlen(msg));
    gsr_md2_final(&m, d);
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_md2(void) {
    static const char *const suite[][2] = { /* RFC 1319, A.5 */
        {"", "8350e5a3e24c153df2275c9f80692773"},
        {"a", "32ec01ec4a6dac72c0ab96fb34c0b5d1"},
        {"abc", "da853b0d3f88d99b30283a69e6ded6bb"},
        {"message digest", "ab4f496bfb2a530b219ff33031fe06b0"},
        {"abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "da33def2a42df13975352846c30338cd"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890", "d5976f79d83d3a0dc9806c3c66f3efd8"},
    };
    for (size_t i = 0; i < sizeof suite / sizeof suite[0]; i++) {
        char got[33];
        md2_hex(suite[i][0], got);
        if (strcmp(got, suite[i][1]) != 0) printf("test_client_parse: MD2(\"%s\") = %s, want %s\n", suite[i][0], got, suite[i][1]);
        CHECK(strcmp(got, suite[i][1]) == 0);
    }
    /* HMAC as RFC 2104 composes it, the message in pieces or whole. */
    uint8_t key[16], a[16], b[16], inner[16], pad[16];
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)(i * 37 + 1);
    const char *msg = "the integrity check's message";
    const void *parts[] = {msg, msg + 5};
    size_t lens[] = {5, strlen(msg) - 5};
    gsr_hmac_md2(key, parts, lens, 2, a);
    gsr_md2 m;
    gsr_md2_init(&m);
    for (int i = 0; i < 16; i++) pad[i] = key[i] ^ 0x36;
    gsr_md2_update(&m, pad, 16);
    gsr_md2_update(&m, msg, strlen(msg));
    gsr_md2_final(&m, inner);
    gsr_md2_init(&m);
    for (int i = 0; i < 16; i++) pad[i] = key[i] ^ 0x5c;
    gsr_md2_update(&m, pad, 16);
    gsr_md2_update(&m, inner, 16);
    gsr_md2_final(&m, b);
    CHECK(memcmp(a, b, 16) == 0);
}

/* ---- a fatbin holding one cubin with one kernel's .nv.info ------------------------------ */
static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v), put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v), put32(p + 4, (uint32_t)(v >> 32)); }

/* One KPARAM_INFO attribute: {4, 0x17, u16 12, u32 index, u16 ordinal, u16 offset, u32 size << 18}. */
static size_t kparam(uint8_t *p, uint32_t ordinal, uint32_t offset, uint32_t size) {
    p[0] = 4, p[1] = 0x17;
    put16(p + 2, 12);
    put32(p + 4, 0);
    put16(p + 8, ordinal);
    put16(p + 10, offset);
    put32(p + 12, size << 18 | 0x1f000);
    return 16;
}

/* The image into buf; returns its size. Sections: null, .shstrtab, .nv.info.<kernel>. */
static size_t make_image(uint8_t *buf, const char *kernel, const uint8_t *info, size_t info_len) {
    memset(buf, 0, 4096);
    uint8_t *elf = buf + 16 + 0x40; /* after the fatbin header and its entry's header */
    char names[256];
    size_t names_len = (size_t)snprintf(names, sizeof names, "%c.shstrtab%c.nv.info.%s", 0, 0, kernel) + 1;
    size_t at = 0x40;
    memcpy(elf + at, names, names_len);
    size_t names_at = at;
    at += names_len;
    size_t info_at = at = (at + 3) & ~(size_t)3;
    memcpy(elf + at, info, info_len);
    at += info_len;
    size_t shoff = at = (at + 7) & ~(size_t)7;
    memcpy(elf, "\x7f" "ELF\x02\x01\x01", 7);
    put64(elf + 0x28, shoff);
    put16(elf + 0x3a, 0x40);
    put16(elf + 0x3c, 3);
    put16(elf + 0x3e, 1);
    uint8_t *sh = elf + shoff;
    put32(sh + 0x40, 1), put32(sh + 0x44, 3), put64(sh + 0x40 + 0x18, names_at), put64(sh + 0x40 + 0x20, names_len);
    put32(sh + 0x80, 11), put64(sh + 0x80 + 0x18, info_at), put64(sh + 0x80 + 0x20, info_len);
    size_t elf_len = shoff + 3 * 0x40;
    put32(buf, 0xBA55ED50u), put16(buf + 4, 1), put16(buf + 6, 16), put64(buf + 8, 0x40 + elf_len);
    uint8_t *entry = buf + 16;
    put16(entry, 2), put16(entry + 2, 0x101), put32(entry + 4, 0x40), put32(entry + 8, (uint32_t)elf_len);
    return 16 + 0x40 + elf_len;
}

static void test_kparams(void) {
    static uint8_t buf[4096];
    uint8_t info[256];
    uint32_t layout[2 * GSR_MAX_PARAMS], n = 99;
    /* mixed(char, double, short, struct{char[3]}, int *, float): listed last to first, as nvcc does. */
    size_t len = 0;
    info[len++] = 3, info[len++] = 0x19, info[len++] = 0x24, info[len++] = 0; /* a u16 attribute between */
    static const uint32_t want[] = {0, 1, 8, 8, 16, 2, 18, 3, 24, 8, 32, 4};
    for (int i = 5; i >= 0; i--) len += kparam(info + len, (uint32_t)i, want[2 * i], want[2 * i + 1]);
    size_t size = make_image(buf, "_Z5mixedcds5threePif", info, len);
    gsr_kparams_learn(7, buf, size);
    CHECK(gsr_kparams_find(7, "_Z5mixedcds5threePif", layout, &n));
    CHECK(n == 6 && memcmp(layout, want, sizeof want) == 0);
    CHECK(!gsr_kparams_find(7, "_Z5mixed", layout, &n));
    CHECK(!gsr_kparams_find(8, "_Z5mixedcds5threePif", layout, &n));
    /* The cubin alone (a module loaded from ELF) says the same. */
    gsr_kparams_learn(8, buf + 16 + 0x40, size - 16 - 0x40);
    CHECK(gsr_kparams_find(8, "_Z5mixedcds5threePif", layout, &n) && n == 6);
    gsr_kparams_forget(7);
    CHECK(!gsr_kparams_find(7, "_Z5mixedcds5threePif", layout, &n));
    CHECK(gsr_kparams_find(8, "_Z5mixedcds5threePif", layout, &n));
    gsr_kparams_forget(8);

    /* A gap (parameter 1 never said) or an unknown format: no layout rather than a wrong one. */
    len = kparam(info, 2, 16, 4);
    len += kparam(info + len, 0, 0, 8);
    size = make_image(buf, "gap", info, len);
    gsr_kparams_learn(9, buf, size);
    CHECK(!gsr_kparams_find(9, "gap", layout, &n));
    len = kparam(info, 0, 0, 8);
    info[len++] = 7, info[len++] = 0x55, info[len++] = 0, info[len++] = 0;
    size = make_image(buf, "odd", info, len);
    gsr_kparams_learn(10, buf, size);
    CHECK(!gsr_kparams_find(10, "odd", layout, &n));

    /* Every truncation and random corruptions: read inside the image only (ASan watches a copy
     * of exactly the stated size). */
    len = 0;
    for (int i = 3; i >= 0; i--) len += kparam(info + len, (uint32_t)i, (uint32_t)(8 * i), 8);
    size = make_image(buf, "k", info, len);
    for (size_t cut = 0; cut <= size; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        gsr_kparams_learn(11, copy, cut);
        gsr_kparams_forget(11);
        free(copy);
    }
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        uint8_t *copy = malloc(size);
        memcpy(copy, buf, size);
        for (int flips = 1 + round % 4; flips > 0; flips--) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % size] = (uint8_t)(seed >> 20);
        }
        gsr_kparams_learn(12, copy, size);
        if (gsr_kparams_find(12, "k", layout, &n)) CHECK(n <= GSR_MAX_PARAMS);
        gsr_kparams_forget(12);
        free(copy);
    }
}

/* A refused image described for the log: its entries, and what follows its end, read without
 * faulting where nothing is mapped. */
static void test_describe(void) {
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *two = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(two != MAP_FAILED);
    if (two == MAP_FAILED) return;
    uint8_t info[16];
    size_t len = kparam(info, 0, 0, 8);
    static uint8_t buf[4096];
    size_t size = make_image(buf, "k", info, len);
    put32(buf + 16 + 0x1c, 90);     /* the entry's SM version */
    put64(buf + 16 + 0x30, 0x2000); /* and an LZ4 flag, printed as it is */
    char out[512];
    /* followed by another fatbin header */
    memcpy(two, buf, size);
    put32(two + size, 0xBA55ED50u);
    gsr_describe_image(out, sizeof out, two, size);
    CHECK(strstr(out, "kind 2 sm 90 flags 0x2000") != NULL);
    CHECK(strstr(out, "past its end: another fatbin header") != NULL);
    /* ending where the mapping ends */
    CHECK(munmap(two + page, (size_t)page) == 0);
    uint8_t *at = two + page - size;
    memcpy(at, buf, size);
    gsr_describe_image(out, sizeof out, at, size);
    CHECK(strstr(out, "past its end: not mapped") != NULL);
    /* a small buffer is cut, never overrun; not a fatbin */
    char small[12];
    memset(small, 'x', sizeof small);
    CHECK(gsr_describe_image(small, 8, at, size) < 8 && small[7] == '\0' && small[8] == 'x');
    gsr_describe_image(out, sizeof out, "ptx text", 9);
    CHECK(strstr(out, "not a fatbin") != NULL);
    munmap(two, (size_t)page);
}

int main(void) {
    test_md2();
    test_kparams();
    test_describe();
    if (failures) {
        printf("test_client_parse: %d failures\n", failures);
        return 1;
    }
    printf("test_client_parse: ok (MD2 RFC 1319 suite, HMAC, cubin layouts, truncations, 20000 corruptions, refused images described)\n");
    return 0;
}
