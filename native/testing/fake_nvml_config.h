/*
 * fake_nvml_config.h: builds the fake machine from GPUSHARE_FAKE_NVML (FAKE_NVML.md).
 */
#ifndef GS_FAKE_NVML_CONFIG_H
#define GS_FAKE_NVML_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "fake_nvml_model.h"

/* The environment variable holding a JSON file path, or the JSON itself. */
#define FAKE_NVML_ENV "GPUSHARE_FAKE_NVML"

/* Fills *m from the environment: unset or empty gives one default H100-like device. On
 * failure returns false with a one-line reason (no newline) in err. */
bool fake_config_load(fake_machine_t *m, char *err, size_t err_size);

#endif /* GS_FAKE_NVML_CONFIG_H */
