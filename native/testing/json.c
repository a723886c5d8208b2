/*
 * json.c: recursive-descent JSON reader (see json.h). All state is per call, in parser_t.
 */
#include "json.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deep enough for any configuration, shallow enough that recursion cannot exhaust the
 * stack of a small test thread on hostile input. */
enum { JSON_MAX_DEPTH = 64 };

typedef struct parser {
    const char *text;
    size_t length;
    size_t pos;
    unsigned line;
    size_t line_start;
    unsigned depth;
    char *err;
    size_t err_size;
} parser_t;

/* A growable byte buffer for decoding strings. */
typedef struct buffer {
    char *data;
    size_t length;
    size_t capacity;
} buffer_t;

static bool parse_value(parser_t *p, json_value_t *out);

__attribute__((format(printf, 2, 3))) static bool fail(parser_t *p, const char *fmt, ...)
{
    char what[192];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (p->err_size > 0)
        (void)snprintf(p->err, p->err_size, "line %u, column %u: %s", p->line,
                       (unsigned)(p->pos - p->line_start) + 1, what);
    return false;
}

static bool at_end(const parser_t *p)
{
    return p->pos >= p->length;
}

static char peek(const parser_t *p)
{
    return at_end(p) ? '\0' : p->text[p->pos];
}

static char peek_at(const parser_t *p, size_t ahead)
{
    return p->pos + ahead >= p->length ? '\0' : p->text[p->pos + ahead];
}

static void advance(parser_t *p)
{
    if (p->text[p->pos] == '\n') {
        p->line++;
        p->line_start = p->pos + 1;
    }
    p->pos++;
}

/* Describes the byte at the cursor for an error message. */
static const char *describe_here(const parser_t *p, char *buf, size_t size)
{
    if (at_end(p))
        return "end of input";
    unsigned char c = (unsigned char)peek(p);
    if (c >= 0x20 && c < 0x7f)
        (void)snprintf(buf, size, "'%c'", c);
    else
        (void)snprintf(buf, size, "byte 0x%02x", c);
    return buf;
}

static bool skip_space(parser_t *p)
{
    for (;;) {
        char c = peek(p);
        if (!at_end(p) && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            advance(p);
        } else if (c == '/' && peek_at(p, 1) == '/') {
            while (!at_end(p) && peek(p) != '\n')
                advance(p);
        } else if (c == '/' && peek_at(p, 1) == '*') {
            advance(p);
            advance(p);
            while (!(peek(p) == '*' && peek_at(p, 1) == '/')) {
                if (at_end(p))
                    return fail(p, "unterminated /* comment");
                advance(p);
            }
            advance(p);
            advance(p);
        } else {
            return true;
        }
    }
}

static bool buffer_push(buffer_t *b, char c)
{
    if (b->length + 1 >= b->capacity) {
        size_t capacity = b->capacity ? b->capacity * 2 : 32;
        char *data = realloc(b->data, capacity);
        if (!data)
            return false;
        b->data = data;
        b->capacity = capacity;
    }
    b->data[b->length++] = c;
    b->data[b->length] = '\0';
    return true;
}

static bool push_utf8(parser_t *p, buffer_t *b, uint32_t cp)
{
    char bytes[4];
    size_t n;
    if (cp < 0x80) {
        bytes[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        bytes[0] = (char)(0xC0 | (cp >> 6));
        bytes[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        bytes[0] = (char)(0xE0 | (cp >> 12));
        bytes[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        bytes[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        bytes[0] = (char)(0xF0 | (cp >> 18));
        bytes[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        bytes[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        bytes[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    for (size_t i = 0; i < n; i++)
        if (!buffer_push(b, bytes[i]))
            return fail(p, "out of memory");
    return true;
}

/* Reads the four hex digits after "\u". */
static bool parse_hex4(parser_t *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = peek(p);
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return fail(p, "expected 4 hex digits after \\u");
        v = v * 16 + d;
        advance(p);
    }
    *out = v;
    return true;
}

/* After the backslash of a \u escape: decodes it (and a following low surrogate). */
static bool parse_unicode_escape(parser_t *p, buffer_t *b)
{
    uint32_t cp;
    if (!parse_hex4(p, &cp))
        return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(p, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t low;
        if (peek(p) != '\\' || peek_at(p, 1) != 'u')
            return fail(p, "high surrogate not followed by a \\u low surrogate");
        advance(p);
        advance(p);
        if (!parse_hex4(p, &low))
            return false;
        if (low < 0xDC00 || low > 0xDFFF)
            return fail(p, "high surrogate not followed by a low surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (cp == 0)
        return fail(p, "\\u0000 is not supported (strings are C strings)");
    return push_utf8(p, b, cp);
}

/* At the opening quote: reads a string into a new NUL-terminated allocation. */
static bool parse_string_chars(parser_t *p, char **chars, size_t *length)
{
    buffer_t b = {.data = malloc(32), .capacity = 32};
    if (!b.data)
        return fail(p, "out of memory");
    b.data[0] = '\0'; /* an empty string is still an allocation the caller frees */
    advance(p);       /* the opening quote */
    for (;;) {
        if (at_end(p)) {
            free(b.data);
            return fail(p, "unterminated string");
        }
        unsigned char c = (unsigned char)peek(p);
        if (c == '"') {
            advance(p);
            break;
        }
        if (c < 0x20) {
            free(b.data);
            return fail(p, "control character 0x%02x in string (escape it)", c);
        }
        if (c != '\\') {
            advance(p);
            if (!buffer_push(&b, (char)c)) {
                free(b.data);
                return fail(p, "out of memory");
            }
            continue;
        }
        advance(p);
        char e = peek(p);
        char decoded;
        bool ok = true;
        switch (e) {
        case '"': decoded = '"'; break;
        case '\\': decoded = '\\'; break;
        case '/': decoded = '/'; break;
        case 'b': decoded = '\b'; break;
        case 'f': decoded = '\f'; break;
        case 'n': decoded = '\n'; break;
        case 'r': decoded = '\r'; break;
        case 't': decoded = '\t'; break;
        case 'u':
            advance(p);
            if (!parse_unicode_escape(p, &b)) {
                free(b.data);
                return false;
            }
            continue;
        default:
            decoded = '\0';
            ok = false;
            break;
        }
        if (!ok) {
            free(b.data);
            return fail(p, "invalid escape in string");
        }
        advance(p);
        if (!buffer_push(&b, decoded)) {
            free(b.data);
            return fail(p, "out of memory");
        }
    }
    *chars = b.data;
    *length = b.length;
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool parse_number(parser_t *p, json_value_t *out)
{
    json_number_t n = {.is_integer = true};
    if (peek(p) == '-') {
        n.negative = true;
        advance(p);
    }
    if (!is_digit(peek(p)))
        return fail(p, "expected a digit");
    if (peek(p) == '0') {
        advance(p);
        if (is_digit(peek(p)))
            return fail(p, "leading zeros are not allowed");
    } else {
        while (is_digit(peek(p))) {
            unsigned d = (unsigned)(peek(p) - '0');
            if (n.magnitude > (ULLONG_MAX - d) / 10)
                n.is_integer = false; /* too large: keep only the approximation */
            else
                n.magnitude = n.magnitude * 10 + d;
            n.approx = n.approx * 10 + d;
            advance(p);
        }
    }
    if (peek(p) == '.') {
        advance(p);
        if (!is_digit(peek(p)))
            return fail(p, "expected a digit after '.'");
        double scale = 0.1;
        while (is_digit(peek(p))) {
            n.approx += scale * (peek(p) - '0');
            scale /= 10;
            advance(p);
        }
        n.is_integer = false;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        advance(p);
        bool negative_exp = false;
        if (peek(p) == '+' || peek(p) == '-') {
            negative_exp = peek(p) == '-';
            advance(p);
        }
        if (!is_digit(peek(p)))
            return fail(p, "expected a digit in the exponent");
        unsigned exp = 0;
        while (is_digit(peek(p))) {
            if (exp < 10000)
                exp = exp * 10 + (unsigned)(peek(p) - '0');
            advance(p);
        }
        for (unsigned i = 0; i < exp && i < 400; i++)
            n.approx = negative_exp ? n.approx / 10 : n.approx * 10;
        n.is_integer = false;
    }
    if (n.negative)
        n.approx = -n.approx;
    out->type = JSON_NUMBER;
    out->as.number = n;
    return true;
}

static bool parse_literal(parser_t *p, const char *word, json_value_t *out)
{
    size_t n = strlen(word);
    if (p->length - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) {
        char here[24];
        return fail(p, "unexpected %s", describe_here(p, here, sizeof here));
    }
    for (size_t i = 0; i < n; i++)
        advance(p);
    if (word[0] == 'n') {
        out->type = JSON_NULL;
    } else {
        out->type = JSON_BOOL;
        out->as.boolean = word[0] == 't';
    }
    return true;
}

typedef enum { SEPARATOR_NEXT, SEPARATOR_CLOSED, SEPARATOR_FAILED } separator_t;

/* After an array item or object member: a ',' (another follows) or the closing bracket. */
static separator_t after_item(parser_t *p, char close)
{
    if (!skip_space(p))
        return SEPARATOR_FAILED;
    if (peek(p) == ',') {
        advance(p);
        return skip_space(p) ? SEPARATOR_NEXT : SEPARATOR_FAILED;
    }
    if (peek(p) == close) {
        advance(p);
        return SEPARATOR_CLOSED;
    }
    char here[24];
    (void)fail(p, "expected ',' or '%c' but found %s", close, describe_here(p, here, sizeof here));
    return SEPARATOR_FAILED;
}

static bool parse_array(parser_t *p, json_value_t *out)
{
    json_value_t *items = NULL;
    size_t count = 0, capacity = 0;
    advance(p); /* [ */
    if (!skip_space(p))
        return false;
    if (peek(p) == ']') {
        advance(p);
    } else {
        for (;;) {
            json_value_t item = {0};
            if (!parse_value(p, &item))
                goto failed;
            if (count == capacity) {
                size_t grown = capacity ? capacity * 2 : 4;
                json_value_t *moved = realloc(items, grown * sizeof *items);
                if (!moved) {
                    json_free(&item);
                    (void)fail(p, "out of memory");
                    goto failed;
                }
                items = moved;
                capacity = grown;
            }
            items[count++] = item;
            separator_t next = after_item(p, ']');
            if (next == SEPARATOR_FAILED)
                goto failed;
            if (next == SEPARATOR_CLOSED)
                break;
        }
    }
    out->type = JSON_ARRAY;
    out->as.array.items = items;
    out->as.array.count = count;
    return true;

failed:
    for (size_t i = 0; i < count; i++)
        json_free(&items[i]);
    free(items);
    return false;
}

static bool parse_object(parser_t *p, json_value_t *out)
{
    json_member_t *members = NULL;
    size_t count = 0, capacity = 0;
    advance(p); /* { */
    if (!skip_space(p))
        return false;
    if (peek(p) == '}') {
        advance(p);
    } else {
        for (;;) {
            json_member_t member = {0};
            size_t key_length;
            if (peek(p) != '"') {
                char here[24];
                (void)fail(p, "expected a \"key\" but found %s", describe_here(p, here, sizeof here));
                goto failed;
            }
            unsigned key_line = p->line;
            size_t key_pos = p->pos, key_line_start = p->line_start;
            if (!parse_string_chars(p, &member.key, &key_length))
                goto failed;
            for (size_t i = 0; i < count; i++) {
                if (strcmp(members[i].key, member.key) == 0) {
                    p->line = key_line; /* point the message at the duplicate */
                    p->pos = key_pos;
                    p->line_start = key_line_start;
                    (void)fail(p, "duplicate key \"%s\"", member.key);
                    free(member.key);
                    goto failed;
                }
            }
            if (!skip_space(p)) {
                free(member.key);
                goto failed;
            }
            if (peek(p) != ':') {
                (void)fail(p, "expected ':' after key \"%s\"", member.key);
                free(member.key);
                goto failed;
            }
            advance(p);
            if (!skip_space(p) || !parse_value(p, &member.value)) {
                free(member.key);
                goto failed;
            }
            if (count == capacity) {
                size_t grown = capacity ? capacity * 2 : 8;
                json_member_t *moved = realloc(members, grown * sizeof *members);
                if (!moved) {
                    free(member.key);
                    json_free(&member.value);
                    (void)fail(p, "out of memory");
                    goto failed;
                }
                members = moved;
                capacity = grown;
            }
            members[count++] = member;
            separator_t next = after_item(p, '}');
            if (next == SEPARATOR_FAILED)
                goto failed;
            if (next == SEPARATOR_CLOSED)
                break;
        }
    }
    out->type = JSON_OBJECT;
    out->as.object.members = members;
    out->as.object.count = count;
    return true;

failed:
    for (size_t i = 0; i < count; i++) {
        free(members[i].key);
        json_free(&members[i].value);
    }
    free(members);
    return false;
}

static bool parse_value(parser_t *p, json_value_t *out)
{
    out->type = JSON_NULL;
    out->line = p->line;
    out->column = (unsigned)(p->pos - p->line_start) + 1;
    char c = peek(p);
    if (!at_end(p) && (c == '{' || c == '[')) {
        if (p->depth >= JSON_MAX_DEPTH)
            return fail(p, "nested deeper than %d levels", JSON_MAX_DEPTH);
        p->depth++;
        bool ok = c == '{' ? parse_object(p, out) : parse_array(p, out);
        p->depth--;
        return ok;
    }
    if (!at_end(p) && c == '"') {
        char *chars;
        size_t length;
        if (!parse_string_chars(p, &chars, &length))
            return false;
        out->type = JSON_STRING;
        out->as.string.chars = chars;
        out->as.string.length = length;
        return true;
    }
    if (!at_end(p) && (c == '-' || is_digit(c)))
        return parse_number(p, out);
    if (!at_end(p) && c == 't')
        return parse_literal(p, "true", out);
    if (!at_end(p) && c == 'f')
        return parse_literal(p, "false", out);
    if (!at_end(p) && c == 'n')
        return parse_literal(p, "null", out);
    char here[24];
    return fail(p, "expected a value but found %s", describe_here(p, here, sizeof here));
}

bool json_parse(const char *text, size_t length, json_value_t *out, char *err, size_t err_size)
{
    parser_t p = {.text = text, .length = length, .line = 1, .err = err, .err_size = err_size};
    out->type = JSON_NULL;
    if (!text)
        return fail(&p, "no text");
    if (!skip_space(&p) || !parse_value(&p, out))
        return false;
    if (!skip_space(&p)) {
        json_free(out);
        return false;
    }
    if (!at_end(&p)) {
        char here[24];
        (void)fail(&p, "unexpected %s after the JSON value", describe_here(&p, here, sizeof here));
        json_free(out);
        return false;
    }
    return true;
}

void json_free(json_value_t *value)
{
    if (!value)
        return;
    switch (value->type) {
    case JSON_STRING:
        free(value->as.string.chars);
        break;
    case JSON_ARRAY:
        for (size_t i = 0; i < value->as.array.count; i++)
            json_free(&value->as.array.items[i]);
        free(value->as.array.items);
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < value->as.object.count; i++) {
            free(value->as.object.members[i].key);
            json_free(&value->as.object.members[i].value);
        }
        free(value->as.object.members);
        break;
    case JSON_NULL:
    case JSON_BOOL:
    case JSON_NUMBER:
        break;
    }
    value->type = JSON_NULL;
}

const json_value_t *json_get(const json_value_t *object, const char *key)
{
    if (!object || object->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < object->as.object.count; i++)
        if (strcmp(object->as.object.members[i].key, key) == 0)
            return &object->as.object.members[i].value;
    return NULL;
}

const char *json_type_name(json_type_t type)
{
    switch (type) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "boolean";
    case JSON_NUMBER: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "unknown";
}
