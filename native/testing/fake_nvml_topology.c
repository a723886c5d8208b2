/*
 * fake_nvml_topology.c: PCIe topology between GPUs and NVLink state entry points.
 */
#include <stddef.h>
#include <string.h>

#include "fake_nvml_state.h"
#include "fake_nvml_util.h"

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t device1, nvmlDevice_t device2,
                                                             nvmlGpuTopologyLevel_t *pathInfo)
{
    fake_target_t t1, t2;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetTopologyCommonAncestor, device1, pathInfo != NULL,
                                      FAKE_GPU_HANDLES, &t1);
    if (r == NVML_SUCCESS && !fake_resolve(device2, &t2))
        r = NVML_ERROR_INVALID_ARGUMENT;
    else if (r == NVML_SUCCESS && t2.gpu->lost)
        r = NVML_ERROR_GPU_IS_LOST;
    else if (r == NVML_SUCCESS && t2.mig)
        r = NVML_ERROR_NOT_SUPPORTED;
    if (r == NVML_SUCCESS)
        *pathInfo = t1.gpu->topology[t2.gpu_index];
    fake_unlock();
    return r;
}

/* The configured link with this number, or NULL (NVML: NOT_SUPPORTED). */
static const fake_nvlink_t *find_link(const fake_gpu_t *g, unsigned int link)
{
    for (unsigned int i = 0; i < g->nvlink_count; i++)
        if (g->nvlinks[i].link == link)
            return &g->nvlinks[i];
    return NULL;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link, nvmlEnableState_t *isActive)
{
    fake_target_t t;
    const fake_nvlink_t *l = NULL;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetNvLinkState, device,
                                      isActive != NULL && link < NVML_NVLINK_MAX_LINKS, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS && !(l = find_link(t.gpu, link)))
        r = NVML_ERROR_NOT_SUPPORTED;
    if (r == NVML_SUCCESS)
        *isActive = l->active ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t device, unsigned int link,
                                                             nvmlPciInfo_t *pci)
{
    fake_target_t t;
    const fake_nvlink_t *l = NULL;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetNvLinkRemotePciInfo_v2, device,
                                      pci != NULL && link < NVML_NVLINK_MAX_LINKS, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS && (!(l = find_link(t.gpu, link)) || !l->has_remote))
        r = NVML_ERROR_NOT_SUPPORTED;
    if (r == NVML_SUCCESS) {
        /* A peer GPU in this machine lends its PCI ids; anything else (an NVSwitch) has none. */
        unsigned int device_id = 0, subsystem_id = 0;
        const fake_machine_t *m = fake_machine();
        for (unsigned int i = 0; i < m->gpu_count; i++) {
            if (memcmp(&m->gpus[i].pci, &l->remote, sizeof l->remote) == 0) {
                device_id = m->gpus[i].pci_device_id;
                subsystem_id = m->gpus[i].pci_subsystem_id;
            }
        }
        fake_fill_pci_info(pci, &l->remote, device_id, subsystem_id);
    }
    fake_unlock();
    return r;
}
