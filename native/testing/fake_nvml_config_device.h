/*
 * fake_nvml_config_device.h: reads one entry of "devices" (with its MIG devices,
 * processes and NVLinks) into a fake_gpu_t.
 */
#ifndef GS_FAKE_NVML_CONFIG_DEVICE_H
#define GS_FAKE_NVML_CONFIG_DEVICE_H

#include <stdbool.h>

#include "fake_nvml_config_read.h"

/* Fills *gpu from devices[index], defaults included, except the topology entries past
 * gpu->topology_length, which need the whole machine (fake_nvml_config.c fills them). */
bool cfg_read_device(cfg_t *c, const json_value_t *entry, unsigned int index, fake_gpu_t *gpu);

#endif /* GS_FAKE_NVML_CONFIG_DEVICE_H */
