/*
 * fake_cuda_config.c: GPUSHARE_FAKE_CUDA -> fake_cuda_config_t (format: FAKE_CUDA.md).
 *
 * Unknown keys are errors, so a typo in a test's configuration fails loudly instead of
 * silently leaving a default in place.
 */
#define _GNU_SOURCE
#include "fake_cuda_config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define MIB (1024ULL * 1024ULL)

static const char *const top_fields[] = {"driverVersion", "contextBytes", "allocRounding", "pitchAlignment",
                                         "vmmGranularity", "poolChunkBytes", "managedResidency",
                                         "defaultKernelMicros", "checkpointStepMillis", "busyDir", "reuseFreed", "sharedGpu", "sharedMemory", "inlineLaunch", "launchTouchBytes", "hostAllocMicros", "noShareable", "errors", "pauseAt", "devices", NULL};
static const char *const device_fields[] = {"name", "uuid", "totalMemory", "reservedMemory", "contextBytes",
                                            "multiprocessorCount", "computeCapability", "pciBusId",
                                            "smPartitionMin", "smCoscheduledAlignment", "smGroupable", NULL};

typedef struct reader {
    char *err;
    size_t err_size;
    const char *source;
} reader_t;

__attribute__((format(printf, 3, 4))) static bool fail(reader_t *r, const char *where, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    (void)snprintf(r->err, r->err_size, "%s: %s: %s", r->source, where, what);
    return false;
}

static bool check_keys(reader_t *r, const char *where, const json_value_t *o, const char *const *allowed)
{
    if (o->type != JSON_OBJECT)
        return fail(r, where, "expected an object, found %s", json_type_name(o->type));
    for (size_t i = 0; i < o->as.object.count; i++) {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, o->as.object.members[i].key) == 0;
        if (!known)
            return fail(r, where, "unknown field \"%s\"", o->as.object.members[i].key);
    }
    return true;
}

/* Absent or null keeps *out (the caller set the default). */
static bool read_u64(reader_t *r, const char *where, const json_value_t *o, const char *key,
                     unsigned long long min, unsigned long long max, unsigned long long *out)
{
    const json_value_t *v = json_get(o, key);
    if (!v || v->type == JSON_NULL)
        return true;
    if (v->type != JSON_NUMBER || !v->as.number.is_integer || (v->as.number.negative && v->as.number.magnitude))
        return fail(r, where, "%s: expected a non-negative integer", key);
    if (v->as.number.magnitude < min || v->as.number.magnitude > max)
        return fail(r, where, "%s: %llu is outside [%llu, %llu]", key, v->as.number.magnitude, min, max);
    *out = v->as.number.magnitude;
    return true;
}

static bool read_u32(reader_t *r, const char *where, const json_value_t *o, const char *key, unsigned int min,
                     unsigned int max, unsigned int *out)
{
    unsigned long long v = *out;
    if (!read_u64(r, where, o, key, min, max, &v))
        return false;
    *out = (unsigned int)v;
    return true;
}

static bool read_string(reader_t *r, const char *where, const json_value_t *o, const char *key, char *dst,
                        size_t size)
{
    const json_value_t *v = json_get(o, key);
    if (!v || v->type == JSON_NULL)
        return true;
    if (v->type != JSON_STRING || v->as.string.length == 0 || v->as.string.length >= size)
        return fail(r, where, "%s: expected a non-empty string shorter than %zu", key, size);
    memcpy(dst, v->as.string.chars, v->as.string.length + 1);
    return true;
}

static bool read_bool(reader_t *r, const char *where, const json_value_t *o, const char *key, bool *dst)
{
    const json_value_t *v = json_get(o, key);
    if (!v || v->type == JSON_NULL)
        return true;
    if (v->type != JSON_BOOL)
        return fail(r, where, "%s: expected true or false", key);
    *dst = v->as.boolean;
    return true;
}

static bool is_power_of_two(unsigned long long v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static void device_defaults(fake_cuda_device_config_t *d, unsigned int index, unsigned long long context_bytes)
{
    memset(d, 0, sizeof *d);
    /* The same default machine as the fake NVML (FAKE_NVML.md), so both describe one GPU. */
    (void)snprintf(d->name, sizeof d->name, "NVIDIA H100 80GB HBM3");
    (void)snprintf(d->uuid, sizeof d->uuid, "GPU-fa4e0000-0000-4000-8000-%012x", index);
    d->total_bytes = 85520809984ULL; /* what an H100 SXM5 80GB reports */
    d->context_bytes = context_bytes;
    d->sm_count = 132;
    d->cc_major = 9;
    d->pci_bus = 0x18 + 8 * index;
}

static bool read_pci(reader_t *r, const char *where, const json_value_t *o, fake_cuda_device_config_t *d)
{
    char text[32] = "";
    if (!read_string(r, where, o, "pciBusId", text, sizeof text))
        return false;
    if (!text[0])
        return true;
    unsigned int domain, bus, device, function;
    char tail;
    if (sscanf(text, "%x:%x:%x.%x%c", &domain, &bus, &device, &function, &tail) != 4 || bus > 0xff || device > 0x1f)
        return fail(r, where, "pciBusId: \"%s\" is not DOMAIN:BUS:DEVICE.FUNCTION in hex", text);
    d->pci_domain = domain;
    d->pci_bus = bus;
    d->pci_device = device;
    return true;
}

static bool read_device(reader_t *r, const json_value_t *o, unsigned int index, fake_cuda_device_config_t *d,
                        unsigned long long context_bytes)
{
    char where[32];
    (void)snprintf(where, sizeof where, "devices[%u]", index);
    device_defaults(d, index, context_bytes);
    if (!check_keys(r, where, o, device_fields) || !read_string(r, where, o, "name", d->name, sizeof d->name) ||
        !read_string(r, where, o, "uuid", d->uuid, sizeof d->uuid) ||
        !read_u64(r, where, o, "totalMemory", 1, ~0ULL >> 2, &d->total_bytes) ||
        !read_u64(r, where, o, "reservedMemory", 0, d->total_bytes, &d->reserved_bytes) ||
        !read_u64(r, where, o, "contextBytes", 0, d->total_bytes, &d->context_bytes) ||
        !read_u32(r, where, o, "multiprocessorCount", 1, 100000, &d->sm_count) || !read_pci(r, where, o, d))
        return false;
    if (strncmp(d->uuid, "GPU-", 4) != 0)
        return fail(r, where, "uuid: \"%s\" must start with GPU-", d->uuid);
    const json_value_t *cc = json_get(o, "computeCapability");
    if (cc && cc->type != JSON_NULL) {
        if (cc->type != JSON_ARRAY || cc->as.array.count != 2)
            return fail(r, where, "computeCapability: expected [major, minor]");
        for (int i = 0; i < 2; i++) {
            const json_number_t *n = &cc->as.array.items[i].as.number;
            if (cc->as.array.items[i].type != JSON_NUMBER || !n->is_integer || n->negative || n->magnitude > 99)
                return fail(r, where, "computeCapability: expected two small integers");
        }
        d->cc_major = (unsigned int)cc->as.array.items[0].as.number.magnitude;
        d->cc_minor = (unsigned int)cc->as.array.items[1].as.number.magnitude;
    }
    /* Green-context SM groups: Hopper and newer split in groups of 8, Ampere of 4 (by 2). */
    d->sm_partition_min = d->cc_major >= 9 ? 8 : 4;
    d->sm_alignment = d->cc_major >= 9 ? 8 : 2;
    if (!read_u32(r, where, o, "smPartitionMin", 1, d->sm_count, &d->sm_partition_min) ||
        !read_u32(r, where, o, "smCoscheduledAlignment", 1, d->sm_count, &d->sm_alignment))
        return false;
    d->sm_groupable = d->sm_count;
    if (!read_u32(r, where, o, "smGroupable", 1, d->sm_count, &d->sm_groupable))
        return false;
    if (d->reserved_bytes > d->total_bytes)
        return fail(r, where, "reservedMemory is larger than totalMemory");
    return true;
}

static bool read_errors(reader_t *r, const json_value_t *root, fake_cuda_config_t *c)
{
    const json_value_t *e = json_get(root, "errors");
    if (!e || e->type == JSON_NULL)
        return true;
    if (e->type != JSON_OBJECT)
        return fail(r, "errors", "expected an object {\"cuFunction\": code}");
    if (e->as.object.count > FAKE_CUDA_MAX_ERRORS)
        return fail(r, "errors", "at most %d entries", FAKE_CUDA_MAX_ERRORS);
    for (size_t i = 0; i < e->as.object.count; i++) {
        const json_member_t *m = &e->as.object.members[i];
        const json_number_t *n = &m->value.as.number;
        if (strncmp(m->key, "cu", 2) != 0 || strlen(m->key) >= sizeof c->errors[0].fn)
            return fail(r, "errors", "\"%s\" is not a cu* function name", m->key);
        if (m->value.type != JSON_NUMBER || !n->is_integer || n->negative || n->magnitude == 0 || n->magnitude > 999)
            return fail(r, "errors", "%s: expected a CUresult code 1..999", m->key);
        (void)snprintf(c->errors[i].fn, sizeof c->errors[i].fn, "%s", m->key);
        c->errors[i].code = (int)n->magnitude;
    }
    c->error_count = (unsigned int)e->as.object.count;
    return true;
}

static bool read_pause_at(reader_t *r, const json_value_t *root, fake_cuda_config_t *c)
{
    static const char *const fields[] = {"fn", "nth", "dir", NULL};
    const json_value_t *o = json_get(root, "pauseAt");
    if (!o || o->type == JSON_NULL)
        return true;
    unsigned long long nth = 1;
    if (!check_keys(r, "pauseAt", o, fields) ||
        !read_string(r, "pauseAt", o, "fn", c->pause_at.fn, sizeof c->pause_at.fn) ||
        !read_u64(r, "pauseAt", o, "nth", 1, 1000000, &nth) ||
        !read_string(r, "pauseAt", o, "dir", c->pause_at.dir, sizeof c->pause_at.dir))
        return false;
    if (strncmp(c->pause_at.fn, "cu", 2) != 0 || c->pause_at.dir[0] == '\0')
        return fail(r, "pauseAt", "expected {\"fn\": a cu* function name, \"nth\": 1.., \"dir\": a directory}");
    c->pause_at.nth = nth;
    return true;
}

static bool read_step_millis(reader_t *r, const json_value_t *root, fake_cuda_config_t *c)
{
    static const char *const steps[] = {"lock", "checkpoint", "restore", "unlock", NULL};
    const json_value_t *o = json_get(root, "checkpointStepMillis");
    if (!o || o->type == JSON_NULL)
        return true;
    if (!check_keys(r, "checkpointStepMillis", o, steps))
        return false;
    for (int i = 0; steps[i]; i++)
        if (!read_u64(r, "checkpointStepMillis", o, steps[i], 0, 600000, &c->checkpoint_step_ms[i]))
            return false;
    return true;
}

static bool read_root(reader_t *r, const json_value_t *root, fake_cuda_config_t *c)
{
    unsigned long long context_bytes = 512 * MIB, driver = (unsigned long long)c->driver_version;
    char residency[16] = "device";
    if (!check_keys(r, "(top level)", root, top_fields) ||
        !read_u64(r, "(top level)", root, "driverVersion", 2000, 99990, &driver) ||
        !read_u64(r, "(top level)", root, "contextBytes", 0, ~0ULL >> 2, &context_bytes) ||
        !read_u64(r, "(top level)", root, "allocRounding", 1, 1ULL << 30, &c->alloc_rounding) ||
        !read_u64(r, "(top level)", root, "pitchAlignment", 1, 1ULL << 20, &c->pitch_alignment) ||
        !read_u64(r, "(top level)", root, "vmmGranularity", 4096, 1ULL << 30, &c->vmm_granularity) ||
        !read_u64(r, "(top level)", root, "poolChunkBytes", 1, 1ULL << 40, &c->pool_chunk_bytes) ||
        !read_u64(r, "(top level)", root, "defaultKernelMicros", 0, 60000000, &c->default_kernel_us) ||
        !read_string(r, "(top level)", root, "managedResidency", residency, sizeof residency) ||
        !read_string(r, "(top level)", root, "busyDir", c->busy_dir, sizeof c->busy_dir) ||
        !read_bool(r, "(top level)", root, "reuseFreed", &c->reuse_freed) ||
        !read_bool(r, "(top level)", root, "sharedGpu", &c->shared_gpu) ||
        !read_bool(r, "(top level)", root, "sharedMemory", &c->shared_memory) ||
        !read_bool(r, "(top level)", root, "inlineLaunch", &c->inline_launch) ||
        !read_u64(r, "(top level)", root, "launchTouchBytes", 0, 64ULL << 20, &c->launch_touch_bytes) ||
        !read_u64(r, "(top level)", root, "hostAllocMicros", 0, 10000000, &c->host_alloc_us) ||
        !read_bool(r, "(top level)", root, "noShareable", &c->no_shareable) ||
        !read_errors(r, root, c) ||
        !read_pause_at(r, root, c) ||
        !read_step_millis(r, root, c))
        return false;
    c->driver_version = (int)driver;
    if (strcmp(residency, "device") != 0 && strcmp(residency, "host") != 0)
        return fail(r, "managedResidency", "expected \"device\" or \"host\", found \"%s\"", residency);
    c->managed_on_host = strcmp(residency, "host") == 0;
    if (!is_power_of_two(c->alloc_rounding) || !is_power_of_two(c->pitch_alignment) ||
        !is_power_of_two(c->vmm_granularity) || c->vmm_granularity % 4096 != 0)
        return fail(r, "(top level)", "allocRounding, pitchAlignment and vmmGranularity must be powers of two");
    const json_value_t *devices = json_get(root, "devices");
    if (!devices || devices->type == JSON_NULL) {
        c->device_count = 1;
        device_defaults(&c->devices[0], 0, context_bytes);
        c->devices[0].sm_partition_min = c->devices[0].sm_alignment = 8;
        c->devices[0].sm_groupable = c->devices[0].sm_count;
        return true;
    }
    if (devices->type != JSON_ARRAY || devices->as.array.count > FAKE_CUDA_MAX_DEVICES)
        return fail(r, "devices", "expected an array of at most %d devices", FAKE_CUDA_MAX_DEVICES);
    c->device_count = (unsigned int)devices->as.array.count;
    for (unsigned int i = 0; i < c->device_count; i++) {
        if (!read_device(r, &devices->as.array.items[i], i, &c->devices[i], context_bytes))
            return false;
        for (unsigned int k = 0; k < i; k++)
            if (strcmp(c->devices[k].uuid, c->devices[i].uuid) == 0)
                return fail(r, "devices", "uuid %s repeats", c->devices[i].uuid);
    }
    return true;
}

static char *read_file(const char *path, size_t *length)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *bigger = realloc(buf, cap *= 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
        } else {
            buf = bigger;
        }
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        free(buf);
        return NULL;
    }
    *length = n;
    return buf;
}

static void config_defaults(fake_cuda_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->driver_version = 13000;
    c->alloc_rounding = 512;
    c->pitch_alignment = 512;
    c->vmm_granularity = 2 * MIB;
    c->pool_chunk_bytes = 32 * MIB;
}

bool fake_cuda_config_load(fake_cuda_config_t *c, char *err, size_t err_size)
{
    config_defaults(c);
    const char *env = getenv(FAKE_CUDA_ENV);
    const char *busy = getenv(FAKE_CUDA_BUSY_ENV);
    reader_t r = {err, err_size, FAKE_CUDA_ENV};
    char *owned = NULL;
    const char *text = "{}";
    size_t length = 2;
    if (env && env[0] == '{') {
        text = env;
        length = strlen(env);
    } else if (env && env[0]) {
        owned = read_file(env, &length);
        if (!owned)
            return fail(&r, env, "cannot read the file");
        text = owned;
        r.source = env;
    }
    json_value_t root;
    char why[200];
    bool ok = json_parse(text, length, &root, why, sizeof why);
    if (!ok)
        (void)fail(&r, "JSON", "%s", why);
    else
        ok = read_root(&r, &root, c);
    json_free(&root);
    free(owned);
    /* The environment variable wins over the file, so one config can serve many tests. */
    if (ok && busy && busy[0])
        (void)snprintf(c->busy_dir, sizeof c->busy_dir, "%s", busy);
    const char *shared = getenv("GPUSHARE_FAKE_CUDA_SHARED_GPU");
    if (ok && shared && shared[0])
        c->shared_gpu = strcmp(shared, "1") == 0;
    const char *memory = getenv("GPUSHARE_FAKE_CUDA_SHARED_MEMORY");
    if (ok && memory && memory[0])
        c->shared_memory = strcmp(memory, "1") == 0;
    return ok;
}

/* One CUDA_VISIBLE_DEVICES entry -> configured index, or -1. */
static int visible_entry(const fake_cuda_config_t *c, const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0)
        return -1;
    if (isdigit((unsigned char)s[0])) {
        unsigned long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)s[i]) || v > 1000)
                return -1;
            v = v * 10 + (unsigned long)(s[i] - '0');
        }
        return v < c->device_count ? (int)v : -1;
    }
    /* A UUID, with or without "GPU-", possibly a unique prefix (as the real driver takes). */
    const char *id = s;
    if (n > 4 && strncmp(s, "GPU-", 4) == 0)
        id += 4, n -= 4;
    int found = -1;
    for (unsigned int i = 0; i < c->device_count; i++) {
        const char *u = c->devices[i].uuid + 4;
        if (strlen(u) >= n && strncasecmp(u, id, n) == 0) {
            if (found >= 0)
                return -1; /* ambiguous prefix */
            found = (int)i;
        }
    }
    return found;
}

unsigned int fake_cuda_visible(const fake_cuda_config_t *c, const char *env, unsigned int visible[FAKE_CUDA_MAX_DEVICES])
{
    unsigned int count = 0;
    if (!env) {
        for (unsigned int i = 0; i < c->device_count; i++)
            visible[count++] = i;
        return count;
    }
    const char *p = env;
    while (*p && count < FAKE_CUDA_MAX_DEVICES) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int idx = visible_entry(c, p, n);
        if (idx < 0)
            break; /* the real driver ignores the invalid entry and everything after it */
        for (unsigned int k = 0; k < count; k++)
            if (visible[k] == (unsigned int)idx)
                return count; /* a repeat counts as invalid too */
        visible[count++] = (unsigned int)idx;
        if (!comma)
            break;
        p = comma + 1;
    }
    return count;
}
