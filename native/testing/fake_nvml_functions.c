/*
 * fake_nvml_functions.c: names and scopes of the exported functions, from the one list in
 * fake_nvml_model.h (used to validate "errors" keys and to index forced errors).
 */
#include <string.h>

#include "fake_nvml_model.h"

#define FAKE_FN_NAME(name, scope) #name,
static const char *const fn_names[FAKE_FN_COUNT] = {FAKE_NVML_FUNCTIONS(FAKE_FN_NAME)};
#undef FAKE_FN_NAME

#define FAKE_FN_SCOPE(name, scope) FAKE_SCOPE_##scope,
static const fake_scope_t fn_scopes[FAKE_FN_COUNT] = {FAKE_NVML_FUNCTIONS(FAKE_FN_SCOPE)};
#undef FAKE_FN_SCOPE

int fake_fn_lookup(const char *name)
{
    for (int i = 0; i < FAKE_FN_COUNT; i++)
        if (strcmp(fn_names[i], name) == 0)
            return i;
    return -1;
}

const char *fake_fn_name(fake_fn_t fn)
{
    return (unsigned)fn < FAKE_FN_COUNT ? fn_names[fn] : "?";
}

fake_scope_t fake_fn_scope(fake_fn_t fn)
{
    return (unsigned)fn < FAKE_FN_COUNT ? fn_scopes[fn] : FAKE_SCOPE_NONE;
}
