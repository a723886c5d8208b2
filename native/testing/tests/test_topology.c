/*
 * test_topology.c: common PCIe ancestor between GPUs (configured and default), NVLink
 * state and remote PCI info.
 */
#include <string.h>

#include "test_machines.h"
#include "test_util.h"

static void test_configured_topology(void)
{
    nvmlDevice_t d0 = test_gpu(0), d1 = test_gpu(1);
    nvmlGpuTopologyLevel_t level = (nvmlGpuTopologyLevel_t)99;

    test_section("configured topology");
    CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(d0, d1, &level), NVML_SUCCESS);
    CHECK_EQ(level, NVML_TOPOLOGY_SINGLE);
    CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(d1, d0, &level), NVML_SUCCESS);
    CHECK_EQ(level, NVML_TOPOLOGY_SINGLE);
    CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(d0, d0, &level), NVML_SUCCESS);
    CHECK_EQ(level, NVML_TOPOLOGY_INTERNAL);
    CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(d0, d1, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(d0, NULL, &level), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(d0, test_bogus_handle(), &level), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(NULL, d0, &level), NVML_ERROR_INVALID_ARGUMENT);
}

static void test_nvlinks(void)
{
    nvmlDevice_t d0 = test_gpu(0), d1 = test_gpu(1);
    nvmlEnableState_t state = (nvmlEnableState_t)9;
    nvmlPciInfo_t pci;

    test_section("NVLink state");
    CHECK_RC(nv.nvmlDeviceGetNvLinkState(d0, 0, &state), NVML_SUCCESS);
    CHECK_EQ(state, NVML_FEATURE_ENABLED);
    CHECK_RC(nv.nvmlDeviceGetNvLinkState(d0, 3, &state), NVML_SUCCESS);
    CHECK_EQ(state, NVML_FEATURE_DISABLED);
    CHECK_RC(nv.nvmlDeviceGetNvLinkState(d0, 17, &state), NVML_SUCCESS);
    CHECK_EQ(state, NVML_FEATURE_ENABLED);
    CHECK_RC(nv.nvmlDeviceGetNvLinkState(d0, 1, &state), NVML_ERROR_NOT_SUPPORTED); /* not configured */
    CHECK_RC(nv.nvmlDeviceGetNvLinkState(d0, NVML_NVLINK_MAX_LINKS, &state), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetNvLinkState(d0, 0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetNvLinkState(d1, 0, &state), NVML_ERROR_NOT_SUPPORTED); /* no NVLink */

    test_section("NVLink remote PCI info");
    memset(&pci, 0x5a, sizeof pci);
    CHECK_RC(nv.nvmlDeviceGetNvLinkRemotePciInfo_v2(d0, 0, &pci), NVML_SUCCESS);
    CHECK_STR(pci.busId, "00000000:2A:00.0");
    CHECK_STR(pci.busIdLegacy, "0000:2A:00.0");
    CHECK_EQ(pci.domain, 0);
    CHECK_EQ(pci.bus, 0x2A);
    CHECK_EQ(pci.device, 0);
    CHECK_EQ(pci.pciDeviceId, 548540638); /* GPU 1's ids: the peer is in this machine */
    CHECK_EQ(pci.pciSubSystemId, 0x16C110DE);
    CHECK_RC(nv.nvmlDeviceGetNvLinkRemotePciInfo_v2(d0, 17, &pci), NVML_SUCCESS);
    CHECK_STR(pci.busId, "00000000:C5:00.0"); /* legacy form in the config, full form out */
    CHECK_EQ(pci.pciDeviceId, 0);             /* not a GPU of this machine (an NVSwitch) */
    CHECK_RC(nv.nvmlDeviceGetNvLinkRemotePciInfo_v2(d0, 3, &pci), NVML_ERROR_NOT_SUPPORTED); /* no remote */
    CHECK_RC(nv.nvmlDeviceGetNvLinkRemotePciInfo_v2(d0, 1, &pci), NVML_ERROR_NOT_SUPPORTED);
    CHECK_RC(nv.nvmlDeviceGetNvLinkRemotePciInfo_v2(d0, 18, &pci), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetNvLinkRemotePciInfo_v2(d0, 0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetNvLinkRemotePciInfo_v2(d1, 0, &pci), NVML_ERROR_NOT_SUPPORTED);
}

static void test_default_topology(void)
{
    nvmlGpuTopologyLevel_t level;
    static const struct {
        unsigned int a, b;
        nvmlGpuTopologyLevel_t want;
    } cases[] = {
        {0, 0, NVML_TOPOLOGY_INTERNAL}, {0, 1, NVML_TOPOLOGY_NODE},   {0, 3, NVML_TOPOLOGY_SYSTEM},
        {0, 2, NVML_TOPOLOGY_SYSTEM},   {3, 3, NVML_TOPOLOGY_INTERNAL},
        {3, 2, NVML_TOPOLOGY_SYSTEM},   {2, 0, NVML_TOPOLOGY_HOSTBRIDGE}, /* row 2 is configured */
        {2, 3, NVML_TOPOLOGY_NODE},     {1, 0, NVML_TOPOLOGY_MULTIPLE},   /* row 1 gives one entry */
        {1, 1, NVML_TOPOLOGY_INTERNAL}, {1, 2, NVML_TOPOLOGY_SYSTEM},
    };
    test_section("default topology: NODE on the same NUMA node, SYSTEM otherwise; rows may be short or long");
    test_init("{\"devices\": [{\"numaNode\": 0}, {\"numaNode\": 0, \"topology\": [20]},"
              " {\"numaNode\": 1, \"topology\": [30, 50, 0, 40, 10]}, {\"numaNode\": -1}]}");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(test_gpu(cases[i].a), test_gpu(cases[i].b), &level),
                 NVML_SUCCESS);
        CHECK_EQ(level, cases[i].want);
    }
    test_shutdown();
}

int main(int argc, char **argv)
{
    test_begin(argc, argv, true);
    test_init(TWO_GPUS);
    test_configured_topology();
    test_nvlinks();
    test_shutdown();
    test_default_topology();
    return test_end();
}
