/*
 * dispatch.h: what dlsym.c asks the hook table (dispatch.c holds its name table).
 */
#ifndef GS_DISPATCH_H
#define GS_DISPATCH_H

/* Our dlsym, for a cu* or nvml* name looked up on a real handle: our hook when the name is
 * one we interpose and the handle's definition is the driver's or NVML's; NULL: let the real
 * dlsym answer. */
void *gs_dlsym_hook(void *handle, const char *name);

#endif /* GS_DISPATCH_H */
