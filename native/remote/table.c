/* table.c: a worker session's objects and allocations (table.h). */
#include "table.h"

#include "proto.h"

#include <stdlib.h>
#include <string.h>

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need) ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p) return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

void gsr_table_free(gsr_table *t) {
    for (size_t i = 0; i < t->nobjs; i++) free(t->objs[i].layout);
    free(t->objs);
    free(t->allocs);
    memset(t, 0, sizeof *t);
}

gsr_obj *gsr_table_add(gsr_table *t, unsigned kind, void *handle, uint64_t ctx) {
    if (grow((void **)&t->objs, &t->cap_objs, t->nobjs + 1, sizeof *t->objs) != 0) return NULL;
    uint64_t id = (uint64_t)kind << 56 | ++t->seq;
    /* Sorted by id; ids grow within a kind, so a new one goes after the last of its kind. */
    size_t at = t->nobjs;
    while (at > 0 && t->objs[at - 1].id > id) at--;
    memmove(&t->objs[at + 1], &t->objs[at], (t->nobjs - at) * sizeof *t->objs);
    t->nobjs++;
    gsr_obj *o = &t->objs[at];
    memset(o, 0, sizeof *o);
    o->id = id;
    o->kind = kind;
    o->handle = handle;
    o->ctx = ctx;
    return o;
}

static long find_index(const gsr_table *t, uint64_t id) {
    size_t lo = 0, hi = t->nobjs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->objs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < t->nobjs && t->objs[lo].id == id) ? (long)lo : -1;
}

gsr_obj *gsr_table_find(gsr_table *t, uint64_t id, unsigned kind) {
    if (GSR_ID_KIND(id) != kind) return NULL;
    long i = find_index(t, id);
    return i < 0 ? NULL : &t->objs[i];
}

gsr_obj *gsr_table_find_handle(gsr_table *t, unsigned kind, void *handle) {
    for (size_t i = 0; i < t->nobjs; i++)
        if (t->objs[i].kind == kind && t->objs[i].handle == handle) return &t->objs[i];
    return NULL;
}

void gsr_table_remove(gsr_table *t, uint64_t id) {
    long i = find_index(t, id);
    if (i < 0) return;
    free(t->objs[i].layout);
    memmove(&t->objs[i], &t->objs[i + 1], (t->nobjs - (size_t)i - 1) * sizeof *t->objs);
    t->nobjs--;
}

/* Index of the last allocation with base <= ptr, or -1. */
static long alloc_floor(const gsr_table *t, uint64_t ptr) {
    size_t lo = 0, hi = t->nallocs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->allocs[mid].base <= ptr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo - 1;
}

int gsr_table_add_alloc(gsr_table *t, uint64_t base, uint64_t size, uint64_t ctx) {
    if (grow((void **)&t->allocs, &t->cap_allocs, t->nallocs + 1, sizeof *t->allocs) != 0) return -1;
    size_t at = (size_t)(alloc_floor(t, base) + 1);
    memmove(&t->allocs[at + 1], &t->allocs[at], (t->nallocs - at) * sizeof *t->allocs);
    t->allocs[at] = (gsr_alloc){base, size, ctx, 0};
    t->nallocs++;
    return 0;
}

long gsr_table_alloc_at(const gsr_table *t, uint64_t base) {
    long i = alloc_floor(t, base);
    return (i >= 0 && t->allocs[i].base == base) ? i : -1;
}

void gsr_table_remove_alloc(gsr_table *t, size_t index) {
    if (index >= t->nallocs) return;
    memmove(&t->allocs[index], &t->allocs[index + 1], (t->nallocs - index - 1) * sizeof *t->allocs);
    t->nallocs--;
}

int gsr_table_range_ok(const gsr_table *t, uint64_t ptr, uint64_t n) {
    long i = alloc_floor(t, ptr);
    if (i < 0) return 0;
    const gsr_alloc *a = &t->allocs[i];
    uint64_t off = ptr - a->base; /* ptr >= base here */
    return off <= a->size && n <= a->size - off;
}
