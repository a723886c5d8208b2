/*
 * fake_nvml_config_device.c: one "devices" entry -> fake_gpu_t, defaults and validation.
 * Field names and defaults are documented in FAKE_NVML.md; keep the two in step.
 */
#include "fake_nvml_config_device.h"

#include <stdio.h>
#include <string.h>

#include "fake_nvml_util.h"

/* NVML reports this for gpuInstanceId/computeInstanceId of a process outside MIG. */
#define FAKE_NO_INSTANCE 0xFFFFFFFFu

static const char *const device_fields[] = {
    "uuid", "name", "serial", "memoryTotal", "memoryUsed", "memoryReserved", "utilizationGpu",
    "utilizationMemory", "temperature", "powerUsage", "powerLimit", "clockSm", "clockMem", "clockGraphics",
    "clockVideo", "maxClockSm", "maxClockMem", "maxClockGraphics", "maxClockVideo", "pciBusId", "pciDeviceId",
    "pciSubSystemId", "numaNode", "computeCapability", "multiprocessorCount", "sharedCopyEngineCount",
    "sharedDecoderCount", "sharedEncoderCount", "sharedJpegCount", "sharedOfaCount", "gpuInstanceSliceCount",
    "computeInstanceSliceCount", "migMode", "migPendingMode", "maxMigDeviceCount", "migDevices", "processes",
    "processesGrowBy", "eccCorrected", "eccUncorrected", "totalEnergy", "pcieReplayCounter", "clocksEventReasons", "topology", "nvlinks", "lost",
    "errors", NULL};

static const char *const mig_fields[] = {
    "uuid", "name", "gpuInstanceId", "computeInstanceId", "memoryTotal", "memoryUsed", "memoryReserved",
    "multiprocessorCount", "sharedCopyEngineCount", "sharedDecoderCount", "sharedEncoderCount",
    "sharedJpegCount", "sharedOfaCount", "gpuInstanceSliceCount", "computeInstanceSliceCount", "errors", NULL};

static const char *const process_fields[] = {"pid", "usedGpuMemory", "gpuInstanceId", "computeInstanceId", NULL};

static const char *const nvlink_fields[] = {"link", "active", "remotePciBusId", NULL};

static void device_defaults(fake_gpu_t *g, unsigned int index)
{
    memset(g, 0, sizeof *g);
    (void)snprintf(g->uuid, sizeof g->uuid, "GPU-fa4e0000-0000-4000-8000-%012x", index);
    (void)snprintf(g->name, sizeof g->name, "NVIDIA H100 80GB HBM3");
    (void)snprintf(g->serial, sizeof g->serial, "%013llu", 1650000000000ULL + index);
    g->memory.total = 85520809984ULL; /* 81559 MiB, what an H100 SXM5 80GB reports */
    g->temperature = 30;
    g->power_usage = 70000;
    g->power_limit = 700000;
    g->clock[NVML_CLOCK_SM] = g->max_clock[NVML_CLOCK_SM] = 1980;
    g->clock[NVML_CLOCK_MEM] = g->max_clock[NVML_CLOCK_MEM] = 2619;
    g->clock[NVML_CLOCK_VIDEO] = g->max_clock[NVML_CLOCK_VIDEO] = 1755;
    g->pci.bus = 0x18 + 8 * index; /* < 0x100 for every index below FAKE_MAX_GPUS */
    g->pci_device_id = 0x233010DE;    /* device 0x2330 (H100 SXM5 80GB), vendor 0x10DE */
    g->pci_subsystem_id = 0x16C110DE;
    g->cc_major = 9;
    g->attributes.multiprocessorCount = 132;
}

static void mig_defaults(fake_mig_t *m, const fake_gpu_t *parent, unsigned int gpu_index, unsigned int index)
{
    memset(m, 0, sizeof *m);
    (void)snprintf(m->uuid, sizeof m->uuid, "MIG-fa4e%04x-0000-4000-8000-%012x", gpu_index, index);
    m->gpu_instance_id = index + 1;
    m->memory.total = 10200547328ULL; /* a 1g.10gb instance */
    m->attributes.multiprocessorCount = 16;
    m->attributes.gpuInstanceSliceCount = 1;
    m->attributes.computeInstanceSliceCount = 1;
    /* At most 80 bytes of the parent's name, so the default always fits NVML's 96. */
    (void)snprintf(m->name, sizeof m->name, "%.80s MIG 1g.10gb", parent->name);
}

/* The engine counts nvmlDeviceGetAttributes_v2 reports beside the SM count. */
static bool read_attributes(cfg_t *c, const char *path, const json_value_t *o, nvmlDeviceAttributes_t *a)
{
    return cfg_read_u32(c, path, o, "multiprocessorCount", 100000, &a->multiprocessorCount) &&
           cfg_read_u32(c, path, o, "sharedCopyEngineCount", 1000, &a->sharedCopyEngineCount) &&
           cfg_read_u32(c, path, o, "sharedDecoderCount", 1000, &a->sharedDecoderCount) &&
           cfg_read_u32(c, path, o, "sharedEncoderCount", 1000, &a->sharedEncoderCount) &&
           cfg_read_u32(c, path, o, "sharedJpegCount", 1000, &a->sharedJpegCount) &&
           cfg_read_u32(c, path, o, "sharedOfaCount", 1000, &a->sharedOfaCount) &&
           cfg_read_u32(c, path, o, "gpuInstanceSliceCount", 1000, &a->gpuInstanceSliceCount) &&
           cfg_read_u32(c, path, o, "computeInstanceSliceCount", 1000, &a->computeInstanceSliceCount);
}

/* memoryTotal/memoryUsed/memoryReserved, with used + reserved <= total. */
static bool read_memory(cfg_t *c, const char *path, const json_value_t *o, fake_memory_t *m)
{
    if (!cfg_read_u64(c, path, o, "memoryTotal", ~0ULL, &m->total) ||
        !cfg_read_u64(c, path, o, "memoryUsed", ~0ULL, &m->used) ||
        !cfg_read_u64(c, path, o, "memoryReserved", ~0ULL, &m->reserved))
        return false;
    if (m->used > m->total || m->reserved > m->total - m->used)
        return cfg_fail(c, path, "memoryUsed + memoryReserved (%llu + %llu) exceed memoryTotal (%llu)", m->used,
                        m->reserved, m->total);
    return true;
}

static bool read_opt_u64(cfg_t *c, const char *path, const json_value_t *o, const char *key, fake_opt_u64_t *out)
{
    out->supported = cfg_field(o, key) != NULL;
    return cfg_read_u64(c, path, o, key, ~0ULL, &out->value);
}

static bool read_mig(cfg_t *c, const char *path, const json_value_t *o, const fake_gpu_t *parent,
                     unsigned int gpu_index, unsigned int index, fake_mig_t *m)
{
    mig_defaults(m, parent, gpu_index, index);
    if (!cfg_check_object(c, path, o, mig_fields) || !cfg_read_string(c, path, o, "uuid", m->uuid, sizeof m->uuid) ||
        !cfg_read_string(c, path, o, "name", m->name, sizeof m->name) ||
        !cfg_read_u32(c, path, o, "gpuInstanceId", 0xFFFFFFFEu, &m->gpu_instance_id) ||
        !cfg_read_u32(c, path, o, "computeInstanceId", 0xFFFFFFFEu, &m->compute_instance_id) ||
        !read_memory(c, path, o, &m->memory) || !read_attributes(c, path, o, &m->attributes) ||
        !cfg_read_errors(c, path, o, FAKE_SCOPE_DEVICE, &m->errors))
        return false;
    m->attributes.memorySizeMB = m->memory.total >> 20;
    return true;
}

static bool read_mig_devices(cfg_t *c, const char *path, const json_value_t *o, unsigned int gpu_index,
                             fake_gpu_t *g)
{
    const json_value_t *list;
    char here[96];
    if (!cfg_read_array(c, path, o, "migDevices", &list))
        return false;
    if (!list)
        return true;
    if (list->as.array.count > FAKE_MAX_MIG)
        return cfg_fail(c, path, "migDevices: more than %d entries", FAKE_MAX_MIG);
    for (size_t i = 0; i < list->as.array.count; i++) {
        (void)snprintf(here, sizeof here, "%s.migDevices[%zu]", path, i);
        if (!read_mig(c, here, &list->as.array.items[i], g, gpu_index, (unsigned int)i, &g->mig[i]))
            return false;
        for (size_t j = 0; j < i; j++)
            if (g->mig[j].gpu_instance_id == g->mig[i].gpu_instance_id &&
                g->mig[j].compute_instance_id == g->mig[i].compute_instance_id)
                return cfg_fail(c, here, "same gpuInstanceId/computeInstanceId as migDevices[%zu]", j);
    }
    /* MIG devices exist only while MIG is enabled: with MIG disabled (or pending) the list
     * is checked but hidden, as NVML hides instances after MIG is turned off. */
    g->mig_count = g->mig_supported && g->mig_mode == NVML_DEVICE_MIG_ENABLE ? (unsigned int)list->as.array.count : 0;
    return true;
}

static bool read_mig_mode(cfg_t *c, const char *path, const json_value_t *o, unsigned int gpu_index, fake_gpu_t *g)
{
    /* Absent migMode means the GPU has no MIG: nvmlDeviceGetMigMode -> NOT_SUPPORTED. */
    g->mig_supported = cfg_field(o, "migMode") != NULL;
    if (!cfg_read_u32(c, path, o, "migMode", 1, &g->mig_mode))
        return false;
    g->mig_pending_mode = g->mig_mode;
    if (!cfg_read_u32(c, path, o, "migPendingMode", 1, &g->mig_pending_mode))
        return false;
    if (!g->mig_supported && cfg_field(o, "migPendingMode"))
        return cfg_fail(c, path, "migPendingMode needs migMode");
    bool enabled = g->mig_supported && g->mig_mode == NVML_DEVICE_MIG_ENABLE;
    if (!read_mig_devices(c, path, o, gpu_index, g))
        return false;
    g->max_mig_devices = 0;
    if (enabled)
        g->max_mig_devices = g->mig_count > FAKE_DEFAULT_MAX_MIG ? g->mig_count : FAKE_DEFAULT_MAX_MIG;
    unsigned int configured = g->max_mig_devices;
    if (!cfg_read_u32(c, path, o, "maxMigDeviceCount", 0xFFFFFFFFu, &configured))
        return false;
    /* NVML reports 0 unless MIG is enabled, whatever the configuration says. */
    if (enabled && cfg_field(o, "maxMigDeviceCount")) {
        g->max_mig_devices = configured;
        if (g->max_mig_devices < g->mig_count)
            return cfg_fail(c, path, "maxMigDeviceCount (%u) is below the number of migDevices (%u)",
                            g->max_mig_devices, g->mig_count);
    }
    return true;
}

static bool read_processes(cfg_t *c, const char *path, const json_value_t *o, fake_gpu_t *g)
{
    const json_value_t *list;
    char here[96];
    if (!cfg_read_array(c, path, o, "processes", &list) ||
        !cfg_read_u32(c, path, o, "processesGrowBy", FAKE_MAX_PROCESSES, &g->processes_grow_by))
        return false;
    size_t count = list ? list->as.array.count : 0;
    if (count + g->processes_grow_by > FAKE_MAX_PROCESSES)
        return cfg_fail(c, path, "processes + processesGrowBy exceed %d", FAKE_MAX_PROCESSES);
    for (size_t i = 0; i < count; i++) {
        const json_value_t *p = &list->as.array.items[i];
        nvmlProcessInfo_t *info = &g->processes[i];
        (void)snprintf(here, sizeof here, "%s.processes[%zu]", path, i);
        info->gpuInstanceId = FAKE_NO_INSTANCE;
        info->computeInstanceId = FAKE_NO_INSTANCE;
        if (!cfg_check_object(c, here, p, process_fields))
            return false;
        if (!cfg_field(p, "pid"))
            return cfg_fail(c, here, "pid is required");
        if (!cfg_read_u32(c, here, p, "pid", 0xFFFFFFFFu, &info->pid) ||
            !cfg_read_u64(c, here, p, "usedGpuMemory", ~0ULL, &info->usedGpuMemory) ||
            !cfg_read_u32(c, here, p, "gpuInstanceId", 0xFFFFFFFFu, &info->gpuInstanceId) ||
            !cfg_read_u32(c, here, p, "computeInstanceId", 0xFFFFFFFFu, &info->computeInstanceId))
            return false;
    }
    g->process_count = (unsigned int)count;
    return true;
}

static bool read_nvlinks(cfg_t *c, const char *path, const json_value_t *o, fake_gpu_t *g)
{
    const json_value_t *list;
    char here[96];
    if (!cfg_read_array(c, path, o, "nvlinks", &list))
        return false;
    size_t count = list ? list->as.array.count : 0;
    if (count > NVML_NVLINK_MAX_LINKS)
        return cfg_fail(c, path, "nvlinks: more than %d links", NVML_NVLINK_MAX_LINKS);
    for (size_t i = 0; i < count; i++) {
        const json_value_t *l = &list->as.array.items[i];
        fake_nvlink_t *link = &g->nvlinks[i];
        char bus_id[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE] = "";
        (void)snprintf(here, sizeof here, "%s.nvlinks[%zu]", path, i);
        link->active = true;
        if (!cfg_check_object(c, here, l, nvlink_fields))
            return false;
        if (!cfg_field(l, "link"))
            return cfg_fail(c, here, "link is required");
        if (!cfg_read_u32(c, here, l, "link", NVML_NVLINK_MAX_LINKS - 1, &link->link) ||
            !cfg_read_bool(c, here, l, "active", &link->active) ||
            !cfg_read_string(c, here, l, "remotePciBusId", bus_id, sizeof bus_id))
            return false;
        link->has_remote = bus_id[0] != '\0';
        if (link->has_remote && !fake_parse_pci_bus_id(bus_id, &link->remote))
            return cfg_fail(c, here, "remotePciBusId \"%s\" is not DDDDDDDD:BB:DD.F", bus_id);
        for (size_t j = 0; j < i; j++)
            if (g->nvlinks[j].link == link->link)
                return cfg_fail(c, here, "link %u is listed twice", link->link);
    }
    g->nvlink_count = (unsigned int)count;
    return true;
}

static bool valid_level(unsigned long long level)
{
    return level == NVML_TOPOLOGY_INTERNAL || level == NVML_TOPOLOGY_SINGLE || level == NVML_TOPOLOGY_MULTIPLE ||
           level == NVML_TOPOLOGY_HOSTBRIDGE || level == NVML_TOPOLOGY_NODE || level == NVML_TOPOLOGY_SYSTEM;
}

/* A "topology" row: entries past the device count are checked and ignored (the FAKE_NVML.md
 * example shows a two-entry row for its one device); missing ones keep the default. */
static bool read_topology(cfg_t *c, const char *path, const json_value_t *o, fake_gpu_t *g)
{
    const json_value_t *row;
    if (!cfg_read_array(c, path, o, "topology", &row))
        return false;
    if (!row)
        return true;
    if (row->as.array.count > FAKE_MAX_GPUS)
        return cfg_fail(c, path, "topology: more than %d entries", FAKE_MAX_GPUS);
    for (size_t i = 0; i < row->as.array.count; i++) {
        const json_value_t *v = &row->as.array.items[i];
        if (v->type != JSON_NUMBER || !v->as.number.is_integer || v->as.number.negative ||
            !valid_level(v->as.number.magnitude))
            return cfg_fail(c, path, "topology[%zu]: expected an nvmlGpuTopologyLevel_t (0, 10, 20, 30, 40 or 50)",
                            i);
        g->topology[i] = (nvmlGpuTopologyLevel_t)v->as.number.magnitude;
    }
    g->topology_length = (unsigned int)row->as.array.count;
    return true;
}

static bool read_pci(cfg_t *c, const char *path, const json_value_t *o, fake_gpu_t *g)
{
    char bus_id[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE] = "";
    if (!cfg_read_string(c, path, o, "pciBusId", bus_id, sizeof bus_id) ||
        !cfg_read_u32(c, path, o, "pciDeviceId", 0xFFFFFFFFu, &g->pci_device_id) ||
        !cfg_read_u32(c, path, o, "pciSubSystemId", 0xFFFFFFFFu, &g->pci_subsystem_id))
        return false;
    if (bus_id[0] && !fake_parse_pci_bus_id(bus_id, &g->pci))
        return cfg_fail(c, path, "pciBusId \"%s\" is not DDDDDDDD:BB:DD.F", bus_id);
    return true;
}

static bool read_compute_capability(cfg_t *c, const char *path, const json_value_t *o, fake_gpu_t *g)
{
    const json_value_t *cc;
    if (!cfg_read_array(c, path, o, "computeCapability", &cc))
        return false;
    if (!cc)
        return true;
    int parts[2] = {0, 0};
    bool ok = cc->as.array.count == 2;
    for (size_t i = 0; ok && i < 2; i++) {
        const json_value_t *v = &cc->as.array.items[i];
        ok = v->type == JSON_NUMBER && v->as.number.is_integer && !v->as.number.negative &&
             v->as.number.magnitude <= 100;
        if (ok)
            parts[i] = (int)v->as.number.magnitude;
    }
    if (ok) {
        g->cc_major = parts[0];
        g->cc_minor = parts[1];
        return true;
    }
    return cfg_fail(c, path, "computeCapability: expected [major, minor], e.g. [9, 0]");
}

static bool read_clocks(cfg_t *c, const char *path, const json_value_t *o, fake_gpu_t *g)
{
    if (!cfg_read_u32(c, path, o, "clockSm", 100000, &g->clock[NVML_CLOCK_SM]) ||
        !cfg_read_u32(c, path, o, "clockMem", 100000, &g->clock[NVML_CLOCK_MEM]) ||
        !cfg_read_u32(c, path, o, "clockVideo", 100000, &g->clock[NVML_CLOCK_VIDEO]) ||
        !cfg_read_u32(c, path, o, "maxClockSm", 100000, &g->max_clock[NVML_CLOCK_SM]) ||
        !cfg_read_u32(c, path, o, "maxClockMem", 100000, &g->max_clock[NVML_CLOCK_MEM]) ||
        !cfg_read_u32(c, path, o, "maxClockVideo", 100000, &g->max_clock[NVML_CLOCK_VIDEO]))
        return false;
    /* On data-centre GPUs the graphics and SM clocks are one clock. */
    g->clock[NVML_CLOCK_GRAPHICS] = g->clock[NVML_CLOCK_SM];
    g->max_clock[NVML_CLOCK_GRAPHICS] = g->max_clock[NVML_CLOCK_SM];
    return cfg_read_u32(c, path, o, "clockGraphics", 100000, &g->clock[NVML_CLOCK_GRAPHICS]) &&
           cfg_read_u32(c, path, o, "maxClockGraphics", 100000, &g->max_clock[NVML_CLOCK_GRAPHICS]);
}

bool cfg_read_device(cfg_t *c, const json_value_t *entry, unsigned int index, fake_gpu_t *g)
{
    char path[32];
    (void)snprintf(path, sizeof path, "devices[%u]", index);
    device_defaults(g, index);
    if (!cfg_check_object(c, path, entry, device_fields))
        return false;
    const json_value_t *o = entry;
    bool ok = cfg_read_string(c, path, o, "uuid", g->uuid, sizeof g->uuid) &&
              cfg_read_string(c, path, o, "name", g->name, sizeof g->name) &&
              cfg_read_string(c, path, o, "serial", g->serial, sizeof g->serial) &&
              read_memory(c, path, o, &g->memory) &&
              cfg_read_u32(c, path, o, "utilizationGpu", 100, &g->utilization.gpu) &&
              cfg_read_u32(c, path, o, "utilizationMemory", 100, &g->utilization.memory) &&
              cfg_read_u32(c, path, o, "temperature", 1000, &g->temperature) &&
              cfg_read_u32(c, path, o, "powerUsage", 0xFFFFFFFFu, &g->power_usage) &&
              cfg_read_u32(c, path, o, "powerLimit", 0xFFFFFFFFu, &g->power_limit) && read_clocks(c, path, o, g) &&
              read_pci(c, path, o, g) && cfg_read_int(c, path, o, "numaNode", -1, 0x7FFFFFFF, &g->numa_node) &&
              read_compute_capability(c, path, o, g) && read_attributes(c, path, o, &g->attributes) &&
              read_mig_mode(c, path, o, index, g) && read_processes(c, path, o, g) &&
              read_opt_u64(c, path, o, "eccCorrected", &g->ecc_corrected) &&
              read_opt_u64(c, path, o, "eccUncorrected", &g->ecc_uncorrected) &&
              read_opt_u64(c, path, o, "totalEnergy", &g->total_energy) &&
              read_opt_u64(c, path, o, "pcieReplayCounter", &g->pcie_replays) &&
              cfg_read_u64(c, path, o, "clocksEventReasons", ~0ULL, &g->clocks_event_reasons) &&
              read_topology(c, path, o, g) && read_nvlinks(c, path, o, g) &&
              cfg_read_bool(c, path, o, "lost", &g->lost) &&
              cfg_read_errors(c, path, o, FAKE_SCOPE_DEVICE, &g->errors);
    g->attributes.memorySizeMB = g->memory.total >> 20;
    return ok;
}
