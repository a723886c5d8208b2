/*
 * fake_nvml_config.c: picks the configuration source, parses it, reads the top level and
 * checks what spans devices (topology defaults, unique UUIDs and PCI bus ids).
 */
#include "fake_nvml_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_nvml_config_device.h"
#include "fake_nvml_config_read.h"
#include "json.h"

/* What an unset GPUSHARE_FAKE_NVML gives: one H100 with the per-field defaults of
 * FAKE_NVML.md, plus what a real idle H100 reports beyond them (reserved memory, MIG
 * capable but disabled, ECC on with no errors). */
static const char default_machine[] =
    "{\"devices\": [{\"memoryReserved\": 567000000, \"migMode\": 0, \"eccCorrected\": 0, \"eccUncorrected\": 0}]}";

/* A configuration file larger than this is a mistake, not a machine. */
enum { MAX_CONFIG_BYTES = 16 * 1024 * 1024 };

static const char *const top_fields[] = {"driverLoaded", "driverVersion", "nvmlVersion", "cudaDriverVersion",
                                         "devices",      "errors",        NULL};

/* Reads a whole file into a new NUL-terminated allocation. */
static bool read_file(cfg_t *c, const char *path, char **text, size_t *length)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t used = 0, capacity = 0;
    if (!f)
        return cfg_fail(c, "", "cannot open: %s", strerror(errno));
    for (;;) {
        if (capacity - used < 4096) {
            size_t grown = capacity ? capacity * 2 : 8192;
            char *moved;
            if (grown > MAX_CONFIG_BYTES + 1) {
                free(data);
                (void)fclose(f);
                return cfg_fail(c, "", "larger than %d bytes", MAX_CONFIG_BYTES);
            }
            moved = realloc(data, grown);
            if (!moved) {
                free(data);
                (void)fclose(f);
                return cfg_fail(c, "", "out of memory");
            }
            data = moved;
            capacity = grown;
        }
        size_t n = fread(data + used, 1, capacity - used - 1, f);
        used += n;
        if (n == 0)
            break;
    }
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        free(data);
        return cfg_fail(c, "", "read error");
    }
    data[used] = '\0';
    *text = data;
    *length = used;
    return true;
}

static bool starts_with_brace(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s == '{';
}

/* Fills the entries a device's "topology" row did not give (all of them without one). */
static void default_topology(fake_machine_t *m, unsigned int i)
{
    fake_gpu_t *g = &m->gpus[i];
    for (unsigned int j = g->topology_length; j < m->gpu_count; j++) {
        const fake_gpu_t *other = &m->gpus[j];
        if (j == i)
            g->topology[j] = NVML_TOPOLOGY_INTERNAL;
        else if (g->numa_node >= 0 && g->numa_node == other->numa_node)
            g->topology[j] = NVML_TOPOLOGY_NODE;
        else
            g->topology[j] = NVML_TOPOLOGY_SYSTEM;
    }
}

/* One UUID in the machine, and where it was configured (mig < 0: the GPU itself). */
typedef struct uuid_ref {
    const char *uuid;
    unsigned int gpu;
    int mig;
} uuid_ref_t;

static void describe_ref(const uuid_ref_t *r, char *buf, size_t size)
{
    if (r->mig < 0)
        (void)snprintf(buf, size, "devices[%u]", r->gpu);
    else
        (void)snprintf(buf, size, "devices[%u].migDevices[%d]", r->gpu, r->mig);
}

/* UUIDs must be unique over GPUs and MIG devices, PCI addresses over GPUs: real NVML
 * never repeats them, and nvmlDeviceGetHandleByUUID could not choose. */
static bool check_unique(cfg_t *c, const fake_machine_t *m)
{
    enum { MAX_REFS = FAKE_MAX_GPUS * (1 + FAKE_MAX_MIG) };
    uuid_ref_t refs[MAX_REFS];
    unsigned int n = 0;
    for (unsigned int i = 0; i < m->gpu_count; i++) {
        refs[n++] = (uuid_ref_t){m->gpus[i].uuid, i, -1};
        for (unsigned int k = 0; k < m->gpus[i].mig_count && n < MAX_REFS; k++)
            refs[n++] = (uuid_ref_t){m->gpus[i].mig[k].uuid, i, (int)k};
    }
    for (unsigned int a = 0; a < n; a++) {
        for (unsigned int b = 0; b < a; b++) {
            if (strcmp(refs[a].uuid, refs[b].uuid) == 0) {
                char here[48], there[48];
                describe_ref(&refs[a], here, sizeof here);
                describe_ref(&refs[b], there, sizeof there);
                return cfg_fail(c, here, "uuid \"%s\" repeats %s", refs[a].uuid, there);
            }
        }
    }
    for (unsigned int i = 0; i < m->gpu_count; i++) {
        for (unsigned int j = 0; j < i; j++) {
            if (memcmp(&m->gpus[i].pci, &m->gpus[j].pci, sizeof m->gpus[i].pci) == 0) {
                char here[32];
                (void)snprintf(here, sizeof here, "devices[%u]", i);
                return cfg_fail(c, here, "pciBusId repeats devices[%u]", j);
            }
        }
    }
    return true;
}

static bool read_machine(cfg_t *c, const json_value_t *root, fake_machine_t *m)
{
    const json_value_t *devices;
    m->driver_loaded = true;
    (void)snprintf(m->driver_version, sizeof m->driver_version, "580.95.05");
    (void)snprintf(m->nvml_version, sizeof m->nvml_version, "13.580.95.05");
    m->cuda_driver_version = 13000;
    if (!cfg_check_object(c, "", root, top_fields) || !cfg_read_bool(c, "", root, "driverLoaded", &m->driver_loaded) ||
        !cfg_read_string(c, "", root, "driverVersion", m->driver_version, sizeof m->driver_version) ||
        !cfg_read_string(c, "", root, "nvmlVersion", m->nvml_version, sizeof m->nvml_version) ||
        !cfg_read_int(c, "", root, "cudaDriverVersion", 0, 0x7FFFFFFF, &m->cuda_driver_version) ||
        !cfg_read_errors(c, "", root, FAKE_SCOPE_SYSTEM, &m->errors) ||
        !cfg_read_array(c, "", root, "devices", &devices))
        return false;
    if (devices && devices->as.array.count > FAKE_MAX_GPUS)
        return cfg_fail(c, "", "devices: more than %d entries", FAKE_MAX_GPUS);
    m->gpu_count = devices ? (unsigned int)devices->as.array.count : 0;
    for (unsigned int i = 0; i < m->gpu_count; i++)
        if (!cfg_read_device(c, &devices->as.array.items[i], i, &m->gpus[i]))
            return false;
    for (unsigned int i = 0; i < m->gpu_count; i++)
        default_topology(m, i);
    return check_unique(c, m);
}

bool fake_config_load(fake_machine_t *m, char *err, size_t err_size)
{
    const char *env = getenv(FAKE_NVML_ENV);
    char source[256];
    cfg_t c = {.err = err, .err_size = err_size, .source = source};
    char *file_text = NULL;
    const char *text;
    size_t length = 0;

    memset(m, 0, sizeof *m);
    if (!env || !env[0]) {
        (void)snprintf(source, sizeof source, "built-in default machine");
        text = default_machine;
        length = sizeof default_machine - 1;
    } else if (starts_with_brace(env)) {
        (void)snprintf(source, sizeof source, "%s (inline JSON)", FAKE_NVML_ENV);
        text = env;
        length = strlen(env);
    } else {
        (void)snprintf(source, sizeof source, "%s=%.200s", FAKE_NVML_ENV, env);
        if (!read_file(&c, env, &file_text, &length))
            return false;
        text = file_text;
    }

    json_value_t root;
    char why[256];
    bool ok = json_parse(text, length, &root, why, sizeof why);
    free(file_text);
    if (!ok)
        return cfg_fail(&c, "", "invalid JSON: %s", why);
    ok = read_machine(&c, &root, m);
    json_free(&root);
    if (!ok)
        memset(m, 0, sizeof *m);
    return ok;
}
