/*
 * fake_nvml_config_read.h: typed, validating field readers for the fake's JSON config.
 *
 * Every reader leaves *out alone when the field is absent or null (so callers set the
 * default first), and fails with "<source>: <path>.<key>: <why>" when it is malformed.
 */
#ifndef GS_FAKE_NVML_CONFIG_READ_H
#define GS_FAKE_NVML_CONFIG_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "fake_nvml_model.h"
#include "json.h"

/* Where an error message goes, and what to call the configuration in it. */
typedef struct cfg {
    char *err;
    size_t err_size;
    const char *source;
} cfg_t;

__attribute__((format(printf, 3, 4))) bool cfg_fail(cfg_t *c, const char *path, const char *fmt, ...);

/* The field, or NULL when absent or null (null means "use the default" everywhere). */
const json_value_t *cfg_field(const json_value_t *object, const char *key);

/* Fails unless value is an object whose keys are all in the NULL-terminated `allowed`
 * list: a typo must not silently become a default. */
bool cfg_check_object(cfg_t *c, const char *path, const json_value_t *value, const char *const *allowed);

bool cfg_read_u64(cfg_t *c, const char *path, const json_value_t *object, const char *key,
                  unsigned long long max, unsigned long long *out);
bool cfg_read_u32(cfg_t *c, const char *path, const json_value_t *object, const char *key, unsigned int max,
                  unsigned int *out);
bool cfg_read_int(cfg_t *c, const char *path, const json_value_t *object, const char *key, int min, int max,
                  int *out);
bool cfg_read_bool(cfg_t *c, const char *path, const json_value_t *object, const char *key, bool *out);

/* Copies a string field into dst; it must fit with its NUL in dst_size and be non-empty. */
bool cfg_read_string(cfg_t *c, const char *path, const json_value_t *object, const char *key, char *dst,
                     size_t dst_size);

/* Reads an "errors" object: {"<nvml function>": <code>}, functions of the given scope. */
bool cfg_read_errors(cfg_t *c, const char *path, const json_value_t *object, fake_scope_t scope,
                     fake_errors_t *out);

/* The array field `key`, or NULL when absent/null; fails (returns false) on a non-array. */
bool cfg_read_array(cfg_t *c, const char *path, const json_value_t *object, const char *key,
                    const json_value_t **out);

#endif /* GS_FAKE_NVML_CONFIG_READ_H */
