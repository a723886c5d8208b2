/*
 * fake_nvml_config_read.c: typed field readers (see fake_nvml_config_read.h).
 */
#include "fake_nvml_config_read.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool cfg_fail(cfg_t *c, const char *path, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->err_size > 0) {
        if (path && path[0])
            (void)snprintf(c->err, c->err_size, "%s: %s: %s", c->source, path, what);
        else
            (void)snprintf(c->err, c->err_size, "%s: %s", c->source, what);
    }
    return false;
}

const json_value_t *cfg_field(const json_value_t *object, const char *key)
{
    const json_value_t *v = json_get(object, key);
    return v && v->type != JSON_NULL ? v : NULL;
}

bool cfg_check_object(cfg_t *c, const char *path, const json_value_t *value, const char *const *allowed)
{
    if (value->type != JSON_OBJECT)
        return cfg_fail(c, path, "expected an object, found %s", json_type_name(value->type));
    for (size_t i = 0; i < value->as.object.count; i++) {
        const char *key = value->as.object.members[i].key;
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known)
            return cfg_fail(c, path, "unknown field \"%s\"", key);
    }
    return true;
}

/* A non-negative integer field, range-checked. */
static bool read_unsigned(cfg_t *c, const char *path, const json_value_t *v, const char *key,
                          unsigned long long max, unsigned long long *out)
{
    if (v->type != JSON_NUMBER)
        return cfg_fail(c, path, "%s: expected a number, found %s", key, json_type_name(v->type));
    const json_number_t *n = &v->as.number;
    if (!n->is_integer)
        return cfg_fail(c, path, "%s: expected an integer", key);
    if (n->negative && n->magnitude != 0)
        return cfg_fail(c, path, "%s: must not be negative", key);
    if (n->magnitude > max)
        return cfg_fail(c, path, "%s: %llu is larger than %llu", key, n->magnitude, max);
    *out = n->magnitude;
    return true;
}

bool cfg_read_u64(cfg_t *c, const char *path, const json_value_t *object, const char *key,
                  unsigned long long max, unsigned long long *out)
{
    const json_value_t *v = cfg_field(object, key);
    return !v || read_unsigned(c, path, v, key, max, out);
}

bool cfg_read_u32(cfg_t *c, const char *path, const json_value_t *object, const char *key, unsigned int max,
                  unsigned int *out)
{
    const json_value_t *v = cfg_field(object, key);
    unsigned long long value;
    if (!v)
        return true;
    if (!read_unsigned(c, path, v, key, max, &value))
        return false;
    *out = (unsigned int)value;
    return true;
}

bool cfg_read_int(cfg_t *c, const char *path, const json_value_t *object, const char *key, int min, int max,
                  int *out)
{
    const json_value_t *v = cfg_field(object, key);
    if (!v)
        return true;
    if (v->type != JSON_NUMBER)
        return cfg_fail(c, path, "%s: expected a number, found %s", key, json_type_name(v->type));
    const json_number_t *n = &v->as.number;
    if (!n->is_integer || n->magnitude > (unsigned long long)INT_MAX + 1)
        return cfg_fail(c, path, "%s: expected an integer from %d to %d", key, min, max);
    long long value = n->negative ? -(long long)n->magnitude : (long long)n->magnitude;
    if (value < min || value > max)
        return cfg_fail(c, path, "%s: %lld is outside %d..%d", key, value, min, max);
    *out = (int)value;
    return true;
}

bool cfg_read_bool(cfg_t *c, const char *path, const json_value_t *object, const char *key, bool *out)
{
    const json_value_t *v = cfg_field(object, key);
    if (!v)
        return true;
    if (v->type != JSON_BOOL)
        return cfg_fail(c, path, "%s: expected true or false, found %s", key, json_type_name(v->type));
    *out = v->as.boolean;
    return true;
}

bool cfg_read_string(cfg_t *c, const char *path, const json_value_t *object, const char *key, char *dst,
                     size_t dst_size)
{
    const json_value_t *v = cfg_field(object, key);
    if (!v)
        return true;
    if (v->type != JSON_STRING)
        return cfg_fail(c, path, "%s: expected a string, found %s", key, json_type_name(v->type));
    if (v->as.string.length == 0)
        return cfg_fail(c, path, "%s: must not be empty", key);
    if (v->as.string.length + 1 > dst_size)
        return cfg_fail(c, path, "%s: longer than NVML's %zu-byte buffer allows", key, dst_size - 1);
    memcpy(dst, v->as.string.chars, v->as.string.length + 1);
    return true;
}

bool cfg_read_errors(cfg_t *c, const char *path, const json_value_t *object, fake_scope_t scope,
                     fake_errors_t *out)
{
    const json_value_t *v = cfg_field(object, "errors");
    char here[96];
    if (!v)
        return true;
    (void)snprintf(here, sizeof here, "%s%serrors", path, path[0] ? "." : "");
    if (v->type != JSON_OBJECT)
        return cfg_fail(c, here, "expected an object, found %s", json_type_name(v->type));
    for (size_t i = 0; i < v->as.object.count; i++) {
        const json_member_t *m = &v->as.object.members[i];
        int fn = fake_fn_lookup(m->key);
        unsigned long long code;
        if (fn < 0)
            return cfg_fail(c, here, "\"%s\" is not a function the fake implements", m->key);
        if (fake_fn_scope((fake_fn_t)fn) != scope)
            return cfg_fail(c, here, "%s cannot be forced here: put it in the %s", m->key,
                            fake_fn_scope((fake_fn_t)fn) == FAKE_SCOPE_SYSTEM
                                ? "top-level \"errors\""
                                : (fake_fn_scope((fake_fn_t)fn) == FAKE_SCOPE_DEVICE ? "device's \"errors\""
                                                                                      : "(nowhere: it cannot fail)"));
        if (!read_unsigned(c, here, &m->value, m->key, INT_MAX, &code))
            return false;
        out->code[fn] = (int)code;
    }
    return true;
}

bool cfg_read_array(cfg_t *c, const char *path, const json_value_t *object, const char *key,
                    const json_value_t **out)
{
    const json_value_t *v = cfg_field(object, key);
    *out = NULL;
    if (!v)
        return true;
    if (v->type != JSON_ARRAY)
        return cfg_fail(c, path, "%s: expected an array, found %s", key, json_type_name(v->type));
    *out = v;
    return true;
}
