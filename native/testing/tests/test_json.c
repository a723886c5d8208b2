/*
 * test_json.c: the configuration parser (testing/json.c) on its own, linked in directly;
 * the library path argument is ignored.
 */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "test_util.h"

static bool parse(const char *text, json_value_t *out, char *err, size_t err_size)
{
    return json_parse(text, strlen(text), out, err, err_size);
}

static void expect_error(const char *text, const char *message)
{
    json_value_t v;
    char err[256] = "";
    CHECK(!parse(text, &v, err, sizeof err));
    CHECK_EQ(v.type, JSON_NULL);
    if (!strstr(err, message))
        printf("  error was: %s\n", err);
    CHECK(strstr(err, message) != NULL);
}

static void test_scalars(void)
{
    json_value_t v;
    char err[256];
    test_section("literals and numbers");
    CHECK(parse(" true ", &v, err, sizeof err) && v.type == JSON_BOOL && v.as.boolean);
    CHECK(parse("false", &v, err, sizeof err) && v.type == JSON_BOOL && !v.as.boolean);
    CHECK(parse("null", &v, err, sizeof err) && v.type == JSON_NULL);

    static const struct {
        const char *text;
        bool is_integer, negative;
        unsigned long long magnitude;
        double approx;
    } numbers[] = {
        {"0", true, false, 0, 0},
        {"-0", true, true, 0, 0},
        {"123", true, false, 123, 123},
        {"-4294967295", true, true, 4294967295ULL, -4294967295.0},
        {"85520809984", true, false, 85520809984ULL, 85520809984.0},
        {"18446744073709551615", true, false, 18446744073709551615ULL, 18446744073709551615.0},
        {"1.5", false, false, 0, 1.5},
        {"-2.5e-1", false, true, 0, -0.25},
        {"1E3", false, false, 0, 1000},
        {"2e+2", false, false, 0, 200},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        CHECK(parse(numbers[i].text, &v, err, sizeof err));
        CHECK_EQ(v.type, JSON_NUMBER);
        CHECK_EQ(v.as.number.is_integer, numbers[i].is_integer);
        CHECK_EQ(v.as.number.negative, numbers[i].negative);
        if (numbers[i].is_integer)
            CHECK_EQ(v.as.number.magnitude, numbers[i].magnitude);
        double diff = v.as.number.approx - numbers[i].approx;
        CHECK(diff < 1e-9 * (numbers[i].approx < 0 ? -numbers[i].approx : numbers[i].approx) + 1e-12 &&
              -diff < 1e-9 * (numbers[i].approx < 0 ? -numbers[i].approx : numbers[i].approx) + 1e-12);
    }
    CHECK(parse("18446744073709551616", &v, err, sizeof err));
    CHECK(!v.as.number.is_integer); /* one past 64 bits: approximate only */
}

static void test_strings(void)
{
    json_value_t v;
    char err[256];
    test_section("strings and escapes");
    CHECK(parse("\"\"", &v, err, sizeof err) && v.type == JSON_STRING && v.as.string.length == 0);
    CHECK_STR(v.as.string.chars, "");
    json_free(&v);
    CHECK(parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", &v, err, sizeof err));
    CHECK_STR(v.as.string.chars, "a\"b\\c/d\b\f\n\r\t");
    json_free(&v);
    CHECK(parse("\"\\u00e9\\u20AC\\ud83d\\ude00\"", &v, err, sizeof err));
    CHECK_STR(v.as.string.chars, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    CHECK_EQ(v.as.string.length, 9);
    json_free(&v);
    CHECK(parse("\"caf\xc3\xa9\"", &v, err, sizeof err)); /* raw UTF-8 passes through */
    CHECK_STR(v.as.string.chars, "caf\xc3\xa9");
    json_free(&v);
    expect_error("\"\\u0000\"", "\\u0000 is not supported");
    expect_error("\"\\ud83d\"", "high surrogate not followed by a \\u low surrogate");
    expect_error("\"\\ud83d\\u0041\"", "high surrogate not followed by a low surrogate");
    expect_error("\"\\ude00\"", "lone low surrogate");
    expect_error("\"\\u12g4\"", "expected 4 hex digits after \\u");
    expect_error("\"\\x\"", "invalid escape in string");
    expect_error("\"abc", "unterminated string");
    expect_error("\"tab\there\"", "control character 0x09 in string");
}

static void test_structures(void)
{
    json_value_t v;
    char err[256];
    test_section("arrays, objects, comments");
    CHECK(parse("// leading comment\n{ /* inline */ \"a\": [1, {\"b\": null}, []], \"c\": {} } // trailing",
                &v, err, sizeof err));
    CHECK_EQ(v.type, JSON_OBJECT);
    CHECK_EQ(v.as.object.count, 2);
    const json_value_t *a = json_get(&v, "a");
    CHECK(a && a->type == JSON_ARRAY && a->as.array.count == 3);
    CHECK(a && a->as.array.items[1].type == JSON_OBJECT);
    CHECK(a && json_get(&a->as.array.items[1], "b") && json_get(&a->as.array.items[1], "b")->type == JSON_NULL);
    CHECK(json_get(&v, "missing") == NULL);
    CHECK(json_get(a, "a") == NULL); /* not an object */
    CHECK(a && a->line == 2 && a->column == 21);
    json_free(&v);
    CHECK_EQ(v.type, JSON_NULL);

    test_section("a large array grows");
    char big[40001];
    size_t n = 0;
    big[n++] = '[';
    for (int i = 0; i < 9999; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%d,", i % 10);
    n += (size_t)snprintf(big + n, sizeof big - n, "9]");
    CHECK(parse(big, &v, err, sizeof err));
    CHECK_EQ(v.as.array.count, 10000);
    CHECK_EQ(v.as.array.items[9999].as.number.magnitude, 9);
    json_free(&v);

    test_section("nesting limit");
    char deep[200];
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    deep[128] = '\0';
    CHECK(parse(deep, &v, err, sizeof err));
    json_free(&v);
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    expect_error(deep, "nested deeper than 64 levels");

    test_section("length, not NUL, ends the input");
    CHECK(json_parse("[1]garbage", 3, &v, err, sizeof err));
    json_free(&v);
    expect_error("[1,\n 2,\n 3", "line 3, column 3: expected ',' or ']' but found end of input");
    CHECK(!json_parse("[1]\0", 4, &v, err, sizeof err));
    CHECK(strstr(err, "unexpected byte 0x00 after the JSON value") != NULL);
}

static void test_errors(void)
{
    test_section("syntax errors, with line and column");
    expect_error("", "line 1, column 1: expected a value but found end of input");
    expect_error("   \n  ", "line 2, column 3: expected a value but found end of input");
    expect_error("{\"a\" 1}", "line 1, column 6: expected ':' after key \"a\"");
    expect_error("{\"a\": 1,}", "expected a \"key\" but found '}'");
    expect_error("{a: 1}", "expected a \"key\" but found 'a'");
    expect_error("[1 2]", "expected ',' or ']' but found '2'");
    expect_error("{\"a\": 1 \"b\": 2}", "expected ',' or '}' but found '\"'");
    expect_error("{\"k\": 1, \"k\": 2}", "line 1, column 10: duplicate key \"k\"");
    expect_error("tru", "unexpected 't'");
    expect_error("nul", "unexpected 'n'");
    expect_error("-", "expected a digit");
    expect_error("1.", "expected a digit after '.'");
    expect_error("1e", "expected a digit in the exponent");
    expect_error("00", "leading zeros are not allowed");
    expect_error("+1", "expected a value but found '+'");
    expect_error("[1] [2]", "unexpected '[' after the JSON value");
    expect_error("/* open", "unterminated /* comment");
    expect_error("\x01", "expected a value but found byte 0x01");
    json_value_t v;
    CHECK(!json_parse(NULL, 0, &v, NULL, 0)); /* no error buffer is fine */
}

int main(int argc, char **argv)
{
    test_begin(argc, argv, false);
    test_scalars();
    test_strings();
    test_structures();
    test_errors();
    return test_end();
}
