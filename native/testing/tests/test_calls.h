/*
 * test_calls.h: calls any exported function by its fake_fn_t with valid arguments, so
 * that behaviours common to all of them (uninitialized, lost GPU, forced errors, MIG
 * handles, bad handles) are checked by one loop over the function list.
 */
#ifndef GS_TEST_CALLS_H
#define GS_TEST_CALLS_H

#include "test_util.h"

/* What the call uses: the device for functions taking one (the first one for the
 * topology query, `other` being the second), and index/uuid for the handle lookups. */
typedef struct test_call_args {
    nvmlDevice_t device;
    nvmlDevice_t other;
    unsigned int index;
    const char *uuid;
} test_call_args_t;

/* Calls fn; nvmlErrorString, which cannot fail, answers NVML_SUCCESS. */
nvmlReturn_t test_call(fake_fn_t fn, const test_call_args_t *args);

/* Whether fn takes a device handle (all DEVICE-scope functions but the two lookups). */
bool test_takes_device(fake_fn_t fn);

#endif /* GS_TEST_CALLS_H */
