/*
 * client_kparams.c: kernels' parameter layouts read from the module image itself, for a worker
 * whose driver cannot report them (cuFuncGetParamInfo is CUDA >= 12.4; the fake driver has
 * none). The CUDA runtime launches with kernelParams (an array of pointers, one per
 * parameter), which the client must pack into one buffer for the wire: that needs each
 * parameter's offset and size (docs/remote.md "Launches").
 *
 * A cubin (ELF) says them in its ".nv.info.<kernel>" sections: a run of attributes
 * {u8 format, u8 attribute, payload}, where format 3 carries a u16 and format 4 a u16 length
 * and that many bytes; attribute 0x17 (KPARAM_INFO) is one parameter {u32 index, u16 ordinal,
 * u16 offset, u32 flags with the size in bits 18..31}. This layout is public knowledge from
 * tools that list cubins (e.g. the open cuobjdump-like decoders) and was checked here against
 * nvcc 13's output for kernels of char, short, 3-byte struct, double, pointer and float
 * parameters. A fatbin is a header {u32 magic 0xBA55ED50, u16 version, u16 header size, u64
 * size} and entries {u16 kind (2: ELF), u16 version, u32 header size, u32 payload size, ...,
 * u64 flags at 0x30}; a compressed entry (flags 0x2000 LZ4, 0x8000 Zstd) is skipped.
 *
 * Every offset is checked against the image's size: anything out of place gives "no layout",
 * never a read outside the image (the image is this process's own memory; the worker trusts
 * none of it). Unknown attribute formats stop the walk and give no layout for that kernel.
 */
#define _GNU_SOURCE /* process_vm_readv */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define FATBIN_MAGIC 0xBA55ED50u
#define FATBIN_KIND_ELF 2
#define FATBIN_COMPRESSED 0xa000ull
#define EIATTR_KPARAM_INFO 0x17
#define NV_INFO_PREFIX ".nv.info."

typedef struct kernel_layout {
    char *name;
    uint32_t nparams;
    uint32_t *layout; /* nparams (offset, size) pairs */
} kernel_layout;

typedef struct module_layouts {
    uint64_t module;
    kernel_layout *k;
    size_t n;
} module_layouts;

static struct {
    pthread_mutex_t lock;
    module_layouts *m;
    size_t n, cap;
} known = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* One kernel's attributes: its layout, or 0 when they do not describe every parameter once. */
static int parse_info(const uint8_t *p, uint64_t size, uint32_t *layout, uint32_t *nparams) {
    uint8_t seen[GSR_MAX_PARAMS] = {0};
    uint32_t n = 0;
    for (uint64_t at = 0; at + 4 <= size;) {
        uint8_t format = p[at], attribute = p[at + 1];
        uint64_t len = 2;
        if (format == 4) {
            len = rd16(p + at + 2);
            at += 2;
        } else if (format != 3) {
            return 0;
        }
        if (at + 2 + len > size) return 0;
        const uint8_t *v = p + at + 2;
        if (attribute == EIATTR_KPARAM_INFO && format == 4) {
            if (len < 12) return 0;
            uint32_t ordinal = rd16(v + 4);
            if (ordinal >= GSR_MAX_PARAMS || seen[ordinal]++) return 0;
            layout[2 * ordinal] = rd16(v + 6);
            layout[2 * ordinal + 1] = (rd32(v + 8) >> 18) & 0x3fff;
            if (ordinal + 1 > n) n = ordinal + 1;
        }
        at += 2 + len;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!seen[i]) return 0; /* a gap: not every parameter said */
    *nparams = n;
    return 1;
}

/* The kernels of one ELF image, appended to *m. */
static void parse_elf(const uint8_t *e, uint64_t size, module_layouts *m) {
    if (size < 0x40 || memcmp(e, "\x7f" "ELF\x02", 5) != 0) return;
    uint64_t shoff = rd64(e + 0x28);
    uint16_t shentsize = rd16(e + 0x3a), shnum = rd16(e + 0x3c), shstrndx = rd16(e + 0x3e);
    if (shentsize < 0x40 || shstrndx >= shnum || shoff > size || (uint64_t)shnum * shentsize > size - shoff) return;
    const uint8_t *strtab = e + shoff + (uint64_t)shstrndx * shentsize;
    uint64_t str_off = rd64(strtab + 0x18), str_size = rd64(strtab + 0x20);
    if (str_off > size || str_size > size - str_off) return;
    for (uint16_t i = 0; i < shnum; i++) {
        const uint8_t *sh = e + shoff + (uint64_t)i * shentsize;
        uint32_t name_at = rd32(sh);
        uint64_t off = rd64(sh + 0x18), bytes = rd64(sh + 0x20);
        if (name_at >= str_size || off > size || bytes > size - off) continue;
        const char *name = (const char *)e + str_off + name_at;
        size_t room = str_size - name_at, len = strnlen(name, room);
        size_t prefix = sizeof NV_INFO_PREFIX - 1;
        if (len == room || len <= prefix || len - prefix > GSR_MAX_NAME || memcmp(name, NV_INFO_PREFIX, prefix) != 0) continue;
        uint32_t layout[2 * GSR_MAX_PARAMS], n = 0;
        if (!parse_info(e + off, bytes, layout, &n)) continue;
        kernel_layout k = {.name = strndup(name + prefix, len - prefix), .nparams = n, .layout = malloc((n ? n : 1) * 2 * sizeof(uint32_t))};
        kernel_layout *grown = realloc(m->k, (m->n + 1) * sizeof *grown);
        if (!k.name || !k.layout || !grown) {
            free(k.name);
            free(k.layout);
            if (grown) m->k = grown;
            return;
        }
        memcpy(k.layout, layout, (size_t)n * 2 * sizeof(uint32_t));
        m->k = grown;
        m->k[m->n++] = k;
    }
}

static void free_layouts(module_layouts *m) {
    for (size_t i = 0; i < m->n; i++) {
        free(m->k[i].name);
        free(m->k[i].layout);
    }
    free(m->k);
}

void gsr_kparams_learn(uint64_t module, const void *image, uint64_t bytes) {
    const uint8_t *p = image;
    module_layouts m = {.module = module};
    if (bytes >= 16 && rd32(p) == FATBIN_MAGIC) {
        uint64_t at = rd16(p + 6), end = rd64(p + 8);
        end = at > bytes ? 0 : end > bytes - at ? bytes : at + end; /* never past the image */
        while (at + 0x38 <= end && !m.n) { /* the first ELF that says anything: layouts do not vary by GPU */
            uint32_t header = rd32(p + at + 4), payload = rd32(p + at + 8);
            if (header < 0x38 || header > end - at || payload > end - at - header) break;
            if (rd16(p + at) == FATBIN_KIND_ELF && !(rd64(p + at + 0x30) & FATBIN_COMPRESSED)) parse_elf(p + at + header, payload, &m);
            at += (uint64_t)header + payload;
        }
    } else {
        parse_elf(p, bytes, &m);
    }
    if (!m.n) return;
    pthread_mutex_lock(&known.lock);
    if (known.n == known.cap) {
        size_t cap = known.cap ? 2 * known.cap : 16;
        module_layouts *grown = realloc(known.m, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&known.lock);
            free_layouts(&m);
            return;
        }
        known.m = grown;
        known.cap = cap;
    }
    known.m[known.n++] = m;
    pthread_mutex_unlock(&known.lock);
}

int gsr_kparams_find(uint64_t module, const char *name, uint32_t *layout, uint32_t *nparams) {
    int found = 0;
    pthread_mutex_lock(&known.lock);
    for (size_t i = 0; i < known.n && !found; i++) {
        if (known.m[i].module != module) continue;
        for (size_t j = 0; j < known.m[i].n && !found; j++)
            if (strcmp(known.m[i].k[j].name, name) == 0) {
                *nparams = known.m[i].k[j].nparams;
                memcpy(layout, known.m[i].k[j].layout, (size_t)*nparams * 2 * sizeof(uint32_t));
                found = 1;
            }
    }
    pthread_mutex_unlock(&known.lock);
    return found;
}

void gsr_kparams_forget(uint64_t module) {
    pthread_mutex_lock(&known.lock);
    for (size_t i = 0; i < known.n; i++)
        if (known.m[i].module == module) {
            free_layouts(&known.m[i]);
            known.m[i] = known.m[--known.n];
            break;
        }
    pthread_mutex_unlock(&known.lock);
}

/* n bytes of this process's memory at p into dst, or -1 where they are not mapped: what lies
 * past a module image is not known to be readable, and a probe must not fault. */
/* 1 when all n bytes went to fd. */
static int write_all(int fd, const void *p, size_t n) {
    for (const uint8_t *b = p; n > 0;) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        b += w;
        n -= (size_t)w;
    }
    return 1;
}

static int read_own(void *dst, const void *p, size_t n) {
    struct iovec local = {dst, n}, remote = {(void *)(uintptr_t)p, n};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -1;
}

/* What a module image the worker's driver refused holds, for the log: its fatbin entries (kind
 * 1 PTX, 2 ELF; the SM version at 0x1c of an entry's header, as the public fatbin decoders read
 * it; the flags at 0x30, 0x2000 LZ4 and 0x8000 Zstd compression) and what follows its end (a
 * further fatbin header there would be a part the size in the first header does not cover). */
size_t gsr_describe_image(char *out, size_t cap, const void *image, uint64_t bytes) {
    const uint8_t *p = image;
    size_t n = 0;
#define PUT(...) do { int w_ = snprintf(out + n, cap - n, __VA_ARGS__); if (w_ < 0) return n; n += (size_t)w_ < cap - n ? (size_t)w_ : cap - n - 1; } while (0)
    if (cap == 0) return 0;
    out[0] = '\0';
    PUT("%llu bytes", (unsigned long long)bytes);
    if (bytes < 16 || rd32(p) != FATBIN_MAGIC) {
        PUT(bytes >= 4 && memcmp(p, "\x7f" "ELF", 4) == 0 ? ", an ELF" : ", not a fatbin");
        return n;
    }
    uint64_t at = rd16(p + 6), end = rd64(p + 8);
    end = at > bytes ? 0 : end > bytes - at ? bytes : at + end;
    PUT(", fatbin version %u:", rd16(p + 4));
    unsigned entries = 0;
    while (at + 0x38 <= end && n + 1 < cap) {
        uint32_t header = rd32(p + at + 4);
        uint64_t payload = rd64(p + at + 8);
        if (header < 0x38 || header > end - at || payload > end - at - header) {
            PUT(" an entry out of place at %llu;", (unsigned long long)at);
            break;
        }
        if (++entries <= 24)
            PUT(" kind %u sm %u flags 0x%llx %llu B;", rd16(p + at), rd32(p + at + 0x1c), (unsigned long long)rd64(p + at + 0x30),
                (unsigned long long)payload);
        at += header + payload;
    }
    if (entries > 24) PUT(" ... %u entries in all;", entries);
    uint8_t next[4];
    if (read_own(next, p + bytes, sizeof next) != 0)
        PUT(" past its end: not mapped");
    else if (rd32(next) == FATBIN_MAGIC)
        PUT(" past its end: another fatbin header");
    else
        PUT(" past its end: %02x%02x%02x%02x", next[0], next[1], next[2], next[3]);
#undef PUT
    return n;
}

/* The refused image's bytes as sent into DIR/refused-PID-N.bin, and what lies past its end (up
 * to 16 MiB, as far as it is mapped) into DIR/refused-PID-N.past: a check loads both on the
 * real driver to tell an image cut short from one the worker's context will not take. Only
 * with GPUSHARE_REMOTE_DUMP set (a diagnosis, never on by default). */
void gsr_dump_image(const char *dir, const void *image, uint64_t bytes) {
    static unsigned seq; /* files of one process told apart; atomic */
    unsigned n = __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED);
    char path[4096];
    int w = snprintf(path, sizeof path, "%s/refused-%d-%u.bin", dir, (int)getpid(), n);
    if (w < 0 || (size_t)w >= sizeof path - 8) return;
    /* The bytes may be a program's: readable by its user alone, never through a link or over
     * a file already there. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    int ok = write_all(fd, image, (size_t)bytes);
    if (close(fd) != 0 || !ok) {
        unlink(path);
        return;
    }
    memcpy(path + w - 4, ".past", 6);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    enum { CHUNK = 65536 };
    uint8_t *chunk = malloc(CHUNK);
    const uint8_t *at = (const uint8_t *)image + bytes;
    for (size_t done = 0; chunk && done < (16u << 20);) {
        /* As much as is mapped: a short read is where the mapping ends. */
        struct iovec local = {chunk, CHUNK}, remote = {(void *)(uintptr_t)at, CHUNK};
        ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
        if (got <= 0 || !write_all(fd, chunk, (size_t)got) || got < CHUNK) break;
        done += CHUNK;
        at += CHUNK;
    }
    free(chunk);
    close(fd);
}
