/*
 * gs_shim.h: what compute.c (through gs_compute.h) still includes until it is split into
 * parts with headers of their own (issue 16): the headers of the modules it uses. Every
 * other file includes only the headers of what it uses (gs_common.h lists them); do not
 * include this one in new code.
 */
#ifndef GS_SHIM_H
#define GS_SHIM_H

#include "gs_common.h"
#include "log.h"
#include "state.h"

#endif /* GS_SHIM_H */
