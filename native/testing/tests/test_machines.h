/*
 * test_machines.h: fake machines (GPUSHARE_FAKE_NVML values) shared by the tests.
 */
#ifndef GS_TEST_MACHINES_H
#define GS_TEST_MACHINES_H

#define UUID0 "GPU-8c1f0000-1111-2222-3333-444455556666"
#define UUID1 "GPU-9d2e0000-1111-2222-3333-444455556666"
#define MIG_UUID0 "MIG-aaaa0000-1111-2222-3333-444455556666"
#define MIG_UUID1 "MIG-bbbb0000-1111-2222-3333-444455556666"

/* Two GPUs: an H100 in MIG mode (two MIG devices, three processes on them, NVLinks) and an
 * A100 without MIG support, NUMA node or ECC, whose process list grows by two between a
 * size query and the fill that follows. Every field of FAKE_NVML.md appears at least once. */
#define TWO_GPUS                                                                                        \
    "{"                                                                                                 \
    "  \"driverLoaded\": true,"                                                                         \
    "  \"driverVersion\": \"580.95.05\","                                                               \
    "  \"nvmlVersion\": \"13.580.95.05\","                                                              \
    "  \"cudaDriverVersion\": 13000,"                                                                   \
    "  \"devices\": [{"                                                                                 \
    "    \"uuid\": \"" UUID0 "\", \"name\": \"NVIDIA H100 80GB HBM3\", \"serial\": \"1650123456789\","  \
    "    \"memoryTotal\": 85520809984, \"memoryUsed\": 5678000, \"memoryReserved\": 567000000,"         \
    "    \"utilizationGpu\": 37, \"utilizationMemory\": 12, \"temperature\": 41,"                       \
    "    \"powerUsage\": 71234, \"powerLimit\": 700000,"                                                \
    "    \"clockSm\": 1755, \"clockMem\": 2619, \"maxClockSm\": 1980, \"maxClockMem\": 2619,"           \
    "    \"clockGraphics\": 1750, \"clockVideo\": 1500, \"maxClockGraphics\": 1985,"                    \
    "    \"maxClockVideo\": 1710,"                                                                      \
    "    \"pciBusId\": \"00000000:19:00.0\", \"pciDeviceId\": 590418142, \"pciSubSystemId\": 381751518," \
    "    \"numaNode\": 0, \"computeCapability\": [9, 0], \"multiprocessorCount\": 132,"                 \
    "    \"sharedCopyEngineCount\": 8, \"sharedDecoderCount\": 7, \"sharedEncoderCount\": 0,"           \
    "    \"sharedJpegCount\": 7, \"sharedOfaCount\": 1, \"gpuInstanceSliceCount\": 7,"                  \
    "    \"computeInstanceSliceCount\": 7,"                                                             \
    "    \"migMode\": 1, \"migPendingMode\": 0, \"maxMigDeviceCount\": 7,"                              \
    "    \"migDevices\": ["                                                                             \
    "      { \"uuid\": \"" MIG_UUID0 "\", \"name\": \"NVIDIA H100 80GB HBM3 MIG 1g.10gb\","             \
    "        \"gpuInstanceId\": 9, \"computeInstanceId\": 0,"                                           \
    "        \"memoryTotal\": 10200547328, \"memoryUsed\": 13000000, \"memoryReserved\": 0,"            \
    "        \"multiprocessorCount\": 16, \"sharedCopyEngineCount\": 1, \"sharedDecoderCount\": 1,"     \
    "        \"sharedEncoderCount\": 0, \"sharedJpegCount\": 1, \"sharedOfaCount\": 0,"                 \
    "        \"gpuInstanceSliceCount\": 1, \"computeInstanceSliceCount\": 1, \"errors\": {} },"         \
    "      { \"uuid\": \"" MIG_UUID1 "\", \"name\": \"NVIDIA H100 80GB HBM3 MIG 3g.40gb\","             \
    "        \"gpuInstanceId\": 2, \"computeInstanceId\": 1,"                                           \
    "        \"memoryTotal\": 42144366592, \"multiprocessorCount\": 60 }"                               \
    "    ],"                                                                                            \
    "    \"processes\": ["                                                                              \
    "      { \"pid\": 4242, \"usedGpuMemory\": 1048576000, \"gpuInstanceId\": 9, \"computeInstanceId\": 0 }," \
    "      { \"pid\": 4343, \"usedGpuMemory\": 2097152000, \"gpuInstanceId\": 2, \"computeInstanceId\": 1 }," \
    "      { \"pid\": 4444, \"usedGpuMemory\": 18446744073709551615, \"gpuInstanceId\": 9,"             \
    "        \"computeInstanceId\": 0 }"                                                                \
    "    ],"                                                                                            \
    "    \"processesGrowBy\": 0,"                                                                       \
    "    \"eccCorrected\": 3, \"eccUncorrected\": 0, \"clocksEventReasons\": 5,"                        \
    "    \"totalEnergy\": 123456789012, \"pcieReplayCounter\": 7,"                                     \
    "    \"topology\": [0, 10],"                                                                        \
    "    \"nvlinks\": [ { \"link\": 0, \"active\": true, \"remotePciBusId\": \"00000000:2A:00.0\" },"   \
    "                   { \"link\": 3, \"active\": false },"                                            \
    "                   { \"link\": 17, \"active\": true, \"remotePciBusId\": \"0000:C5:00.0\" } ],"    \
    "    \"lost\": false, \"errors\": {}"                                                               \
    "  }, {"                                                                                            \
    "    \"uuid\": \"" UUID1 "\", \"name\": \"NVIDIA A100-SXM4-40GB\", \"serial\": \"1321987654321\","  \
    "    \"memoryTotal\": 42949672960, \"memoryUsed\": 1073741824,"                                     \
    "    \"utilizationGpu\": 100, \"utilizationMemory\": 0, \"temperature\": 66,"                       \
    "    \"powerUsage\": 400000, \"powerLimit\": 400000,"                                               \
    "    \"clockSm\": 1410, \"clockMem\": 1215, \"maxClockSm\": 1410, \"maxClockMem\": 1215,"           \
    "    \"pciBusId\": \"00000000:2a:00.0\", \"pciDeviceId\": 548540638,"                               \
    "    \"numaNode\": -1, \"computeCapability\": [8, 0], \"multiprocessorCount\": 108,"                \
    "    \"processes\": [ { \"pid\": 5001, \"usedGpuMemory\": 1000 } ],"                               \
    "    \"processesGrowBy\": 2, \"eccCorrected\": null, \"clocksEventReasons\": 18446744073709551615," \
    "    \"topology\": [10, 0]"                                                                         \
    "  }]"                                                                                              \
    "}"

#endif /* GS_TEST_MACHINES_H */
