/*
 * fake_nvml_util.c: string copy by NVML's length rule and PCI bus id parsing/formatting.
 */
#include "fake_nvml_util.h"

#include <stdio.h>
#include <string.h>

nvmlReturn_t fake_copy_string(char *dst, unsigned int length, const char *src)
{
    size_t needed = strlen(src) + 1;
    if (needed > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, needed);
    return NVML_SUCCESS;
}

/* Reads 1..max_digits hex digits; *end gets the first byte after them. */
static bool parse_hex(const char *text, unsigned max_digits, unsigned long long *value, const char **end)
{
    unsigned long long v = 0;
    unsigned n = 0;
    for (; n < max_digits; n++) {
        char c = text[n];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            break;
        v = v * 16 + d;
    }
    *value = v;
    *end = text + n;
    return n > 0;
}

bool fake_parse_pci_bus_id(const char *text, fake_pci_t *out)
{
    unsigned long long domain, bus, device, function;
    const char *p = text;
    const char *start = p;
    if (!parse_hex(p, 8, &domain, &p) || (p - start != 4 && p - start != 8) || *p++ != ':')
        return false;
    start = p;
    if (!parse_hex(p, 2, &bus, &p) || p - start != 2 || *p++ != ':')
        return false;
    start = p;
    if (!parse_hex(p, 2, &device, &p) || p - start != 2 || *p++ != '.')
        return false;
    start = p;
    if (!parse_hex(p, 1, &function, &p) || *p != '\0')
        return false;
    if (device > 0x1F || function > 7)
        return false;
    out->domain = (unsigned int)domain;
    out->bus = (unsigned int)bus;
    out->device = (unsigned int)device;
    out->function = (unsigned int)function;
    return true;
}

void fake_fill_pci_info(nvmlPciInfo_t *out, const fake_pci_t *pci, unsigned int pci_device_id,
                        unsigned int pci_subsystem_id)
{
    memset(out, 0, sizeof *out);
    out->domain = pci->domain;
    out->bus = pci->bus;
    out->device = pci->device;
    out->pciDeviceId = pci_device_id;
    out->pciSubSystemId = pci_subsystem_id;
    /* The legacy form has a 16-bit domain; NVML truncates wider ones the same way. */
    (void)snprintf(out->busIdLegacy, sizeof out->busIdLegacy, "%04X:%02X:%02X.%X", pci->domain & 0xFFFFu,
                   pci->bus & 0xFFu, pci->device & 0x1Fu, pci->function & 0x7u);
    (void)snprintf(out->busId, sizeof out->busId, "%08X:%02X:%02X.%X", pci->domain, pci->bus & 0xFFu,
                   pci->device & 0x1Fu, pci->function & 0x7u);
}
