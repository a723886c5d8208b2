/*
 * json.h: a small JSON reader for the fake drivers' configuration (C11, no dependencies).
 *
 * It parses a whole document into a tree the caller frees with json_free. It accepts
 * strict JSON plus // and block comments (the FAKE_NVML.md example is written as JSONC).
 * Integers are kept exact up to 64 bits, because byte counts such as 85520809984 and
 * sentinels such as 18446744073709551615 must survive; other numbers are approximate.
 */
#ifndef GS_TESTING_JSON_H
#define GS_TESTING_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type_t;

typedef struct json_value json_value_t;
typedef struct json_member json_member_t;

typedef struct json_number {
    bool is_integer;              /* no fraction or exponent, and fits in 64 bits */
    bool negative;
    unsigned long long magnitude; /* |value| when is_integer */
    double approx;                /* always set */
} json_number_t;

struct json_value {
    json_type_t type;
    unsigned line;   /* where the value starts, 1-based, for error messages */
    unsigned column;
    union {
        bool boolean;
        json_number_t number;
        struct {
            char *chars; /* NUL-terminated; \u0000 is rejected so this is the whole string */
            size_t length;
        } string;
        struct {
            json_value_t *items;
            size_t count;
        } array;
        struct {
            json_member_t *members;
            size_t count;
        } object;
    } as;
};

struct json_member {
    char *key;
    json_value_t value;
};

/* Parses `length` bytes of `text` into *out. On failure returns false, leaves *out as
 * JSON_NULL and writes "line L, column C: what" into err. */
bool json_parse(const char *text, size_t length, json_value_t *out, char *err, size_t err_size);

/* Frees everything json_parse allocated under value; value becomes JSON_NULL. */
void json_free(json_value_t *value);

/* The member named key of an object, or NULL (also when object is not an object). */
const json_value_t *json_get(const json_value_t *object, const char *key);

/* A JSON type's name for messages ("object", "string", ...). */
const char *json_type_name(json_type_t type);

#endif /* GS_TESTING_JSON_H */
