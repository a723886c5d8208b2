/*
 * layout_json.h: what the layout tools (region_layout.c, board_layout.c) print, as the compiler
 * sees a header: per struct its sizeof and every listed field's offsetof and size, as JSON. The
 * TypeScript layouts are checked against that output (src/gpu/region/layout.test.ts).
 */
#ifndef GS_LAYOUT_JSON_H
#define GS_LAYOUT_JSON_H

#include <stddef.h>
#include <stdio.h>

typedef struct field {
    const char *name;
    size_t offset, size;
} field;

/* One table entry per field: the struct and member names, spelled once. */
#define F(type, member) {#member, offsetof(type, member), sizeof(((type *)0)->member)}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* One struct, a line of JSON: "name": {"size": ..., "fields": {...}} (a comma after unless last). */
static inline void print_struct(const char *name, size_t size, const field *fields, size_t n, int last)
{
    printf("    \"%s\": {\"size\": %zu, \"fields\": {", name, size);
    for (size_t i = 0; i < n; i++)
        printf("%s\"%s\": {\"offset\": %zu, \"size\": %zu}", i ? ", " : "", fields[i].name, fields[i].offset,
               fields[i].size);
    printf("}}%s\n", last ? "" : ",");
}

#endif /* GS_LAYOUT_JSON_H */
