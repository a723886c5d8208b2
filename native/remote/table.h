/*
 * table.h: a worker session's own objects and allocations (docs/remote.md "Calls"). Every
 * handle a client names is looked up here, so a forged or stale id, or an id of another
 * kind, is an error and never reaches the driver; every device range a copy or memset names
 * must lie inside one of the session's live allocations.
 */
#ifndef GSR_TABLE_H
#define GSR_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct gsr_obj {
    uint64_t id;       /* kind << 56 | sequence: what the client holds */
    unsigned kind;     /* GSR_KIND_* */
    void *handle;      /* the driver's handle */
    uint64_t ctx;      /* the id of the context it belongs to (0 for contexts) */
    uint64_t parent;   /* functions: the id of their module */
    int device;        /* contexts: the device; primary contexts also count refs below */
    int primary_refs;  /* primary contexts: retains not yet released; 0 for created ones */
    uint32_t nparams;  /* functions: parameter count from cuFuncGetParamInfo (layout known) */
    int has_layout;
    uint32_t *layout;  /* functions: nparams (offset, size) pairs, owned */
    unsigned flags;    /* streams: the flags and priority they were created with */
    int priority;
    void *kernel;      /* functions of a library: its CUkernel (no context: ctx is 0), and */
    uint64_t fn_ctx;   /* the context whose function `handle` is (gsr_function_of resolves) */
} gsr_obj;

typedef struct gsr_alloc {
    uint64_t base, size;
    uint64_t ctx;
    uint64_t module; /* 0: the session's cuMemAlloc; else the id of the module whose global it is
                      * (the driver's to free with the module: never cuMemFree'd, not counted) */
} gsr_alloc;

typedef struct gsr_table {
    gsr_obj *objs; /* sorted by id, for binary search */
    size_t nobjs, cap_objs;
    gsr_alloc *allocs; /* sorted by base */
    size_t nallocs, cap_allocs;
    uint64_t seq;
} gsr_table;

void gsr_table_free(gsr_table *t);
/* Adds an object; returns it (its id set; valid until the next add or remove), or NULL when out of memory. */
gsr_obj *gsr_table_add(gsr_table *t, unsigned kind, void *handle, uint64_t ctx);
/* The live object of that id and kind, or NULL. */
gsr_obj *gsr_table_find(gsr_table *t, uint64_t id, unsigned kind);
/* The object of that kind holding that driver handle, or NULL. */
gsr_obj *gsr_table_find_handle(gsr_table *t, unsigned kind, void *handle);
void gsr_table_remove(gsr_table *t, uint64_t id);
int gsr_table_add_alloc(gsr_table *t, uint64_t base, uint64_t size, uint64_t ctx);
/* Index of the allocation starting exactly at base, or -1. */
long gsr_table_alloc_at(const gsr_table *t, uint64_t base);
void gsr_table_remove_alloc(gsr_table *t, size_t index);
/* 1 when [ptr, ptr + n) lies inside one live allocation (n == 0: ptr inside or at its end). */
int gsr_table_range_ok(const gsr_table *t, uint64_t ptr, uint64_t n);

#endif /* GSR_TABLE_H */
