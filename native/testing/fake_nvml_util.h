/*
 * fake_nvml_util.h: small pure helpers shared by the fake's entry points and its config.
 */
#ifndef GS_FAKE_NVML_UTIL_H
#define GS_FAKE_NVML_UTIL_H

#include <stdbool.h>

#include "fake_nvml_model.h"

/* Copies src into a caller's buffer by NVML's rule: the whole string and its NUL must fit
 * in `length` bytes, else NVML_ERROR_INSUFFICIENT_SIZE and the buffer is left untouched. */
nvmlReturn_t fake_copy_string(char *dst, unsigned int length, const char *src);

/* Parses "DDDDDDDD:BB:DD.F" or the legacy "DDDD:BB:DD.F" (hex digits, any case). */
bool fake_parse_pci_bus_id(const char *text, fake_pci_t *out);

/* Fills an nvmlPciInfo_t as NVML does: both bus id strings in upper-case hex. */
void fake_fill_pci_info(nvmlPciInfo_t *out, const fake_pci_t *pci, unsigned int pci_device_id,
                        unsigned int pci_subsystem_id);

#endif /* GS_FAKE_NVML_UTIL_H */
