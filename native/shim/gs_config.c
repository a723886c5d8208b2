/*
 * gs_config.c: the environment -> gs_config. See gs_config.h for the rules.
 *
 * Why one file of over 400 lines: a parser per variable family, each with its accepted forms and
 * messages, under one precedence rule (ours over HAMi-core's) that lives here once.
 */
#include "gs_config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Used inside printf formats (set_why), hence the doubled percent sign. */
#define BYTES_ACCEPTED "a size such as 8Gi, 8192Mi, 8G, 1.5GiB, 50%% or plain bytes"

typedef struct {
    const char *suffix;
    uint64_t multiplier;
} unit;

/* Binary suffixes as in Kubernetes (Ki, Mi...), decimal ones too (k, M, G...), and the B forms people type. */
static const unit BYTE_UNITS[] = {
    {"", 1}, {"B", 1},
    {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30}, {"Ti", 1ull << 40}, {"Pi", 1ull << 50},
    {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40}, {"PiB", 1ull << 50},
    {"k", 1000ull}, {"K", 1000ull}, {"M", 1000000ull}, {"G", 1000000000ull}, {"T", 1000000000000ull}, {"P", 1000000000000000ull},
    {"kB", 1000ull}, {"KB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull}, {"TB", 1000000000000ull}, {"PB", 1000000000000000ull},
};

/*
 * Refused rather than guessed: Kubernetes reads `m` as milli, HAMi-core's variables read
 * `4096m` as MiB. GPUSHARE_MEMORY_LIMIT takes the unambiguous forms; HAMi's own variables
 * keep HAMi's meaning (gs_parse_hami_bytes).
 */
static const char *const AMBIGUOUS_UNITS[] = {"m", "g", "t", "mb", "gb"};

static void set_why(char *why, size_t why_len, const char *fmt, const char *text) {
    if (why != NULL && why_len > 0) snprintf(why, why_len, fmt, text);
}

/* Splits "  1.5Gi " into a number and a suffix; -1 when the number part is malformed. */
static int split_number(const char *text, long double *value, const char **suffix, size_t *suffix_len, int *negative) {
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    *negative = 0;
    if (*p == '-' || *p == '+') {
        *negative = (*p == '-');
        p++;
    }
    long double v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        long double scale = 0.1L;
        while (isdigit((unsigned char)*p)) {
            v += scale * (*p - '0');
            scale /= 10;
            p++;
            digits++;
        }
    }
    if (digits == 0) return -1;
    const char *end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1])) end--;
    *value = v;
    *suffix = p;
    *suffix_len = (size_t)(end - p);
    return 0;
}

static int suffix_is(const char *suffix, size_t len, const char *candidate) {
    return strlen(candidate) == len && strncmp(suffix, candidate, len) == 0;
}

int gs_parse_bytes(const char *text, uint64_t *bytes, char *why, size_t why_len) {
    long double value;
    const char *suffix;
    size_t suffix_len;
    int negative;
    if (text == NULL || split_number(text, &value, &suffix, &suffix_len, &negative) != 0) {
        set_why(why, why_len, "\"%s\" is not a size; expected " BYTES_ACCEPTED, text == NULL ? "" : text);
        return -1;
    }
    for (size_t i = 0; i < sizeof AMBIGUOUS_UNITS / sizeof AMBIGUOUS_UNITS[0]; i++) {
        if (suffix_is(suffix, suffix_len, AMBIGUOUS_UNITS[i])) {
            set_why(why, why_len, "\"%s\" has an ambiguous unit: write Mi/Gi (powers of 2) or M/G (powers of 10)", text);
            return -1;
        }
    }
    uint64_t multiplier = 0;
    for (size_t i = 0; i < sizeof BYTE_UNITS / sizeof BYTE_UNITS[0]; i++) {
        if (suffix_is(suffix, suffix_len, BYTE_UNITS[i].suffix)) multiplier = BYTE_UNITS[i].multiplier;
    }
    if (multiplier == 0) {
        set_why(why, why_len, "\"%s\" has an unknown unit; expected " BYTES_ACCEPTED, text);
        return -1;
    }
    if (negative) {
        set_why(why, why_len, "\"%s\" is negative; a limit must be greater than zero", text);
        return -1;
    }
    long double total = value * (long double)multiplier;
    if (total > 9.2e18L) {
        set_why(why, why_len, "\"%s\" is too large", text);
        return -1;
    }
    long double rounded = roundl(total);
    if (fabsl(total - rounded) > 1e-6L) {
        set_why(why, why_len, "\"%s\" is not a whole number of bytes", text);
        return -1;
    }
    if (rounded < 1) {
        set_why(why, why_len, "\"%s\" is zero; a limit must be greater than zero", text);
        return -1;
    }
    *bytes = (uint64_t)rounded;
    return 0;
}

int gs_parse_hami_bytes(const char *text, uint64_t *bytes, char *why, size_t why_len) {
    const char *p = text == NULL ? "" : text;
    uint64_t v = 0;
    int digits = 0;
    for (; isdigit((unsigned char)*p); p++, digits++) {
        if (v > (UINT64_MAX - 9) / 10) {
            set_why(why, why_len, "\"%s\" is too large", text);
            return -1;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    switch (*p) {
    case '\0': break;
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    default: p = NULL; break;
    }
    if (digits == 0 || p == NULL || *p != '\0') {
        set_why(why, why_len, "\"%s\" is not a HAMi-core size; expected a whole number with an optional k, m or g suffix (binary units), e.g. 4096m or 4g", text == NULL ? "" : text);
        return -1;
    }
    if (v == 0) {
        set_why(why, why_len, "\"%s\" is zero; a limit must be greater than zero", text);
        return -1;
    }
    if (shift > 0 && v > (UINT64_MAX >> shift)) {
        set_why(why, why_len, "\"%s\" is too large", text);
        return -1;
    }
    *bytes = v << shift;
    return 0;
}

int gs_parse_percent(const char *text, int *percent, char *why, size_t why_len) {
    const char *p = text == NULL ? "" : text;
    while (isspace((unsigned char)*p)) p++;
    int v = 0;
    int digits = 0;
    for (; isdigit((unsigned char)*p) && digits < 4; p++, digits++) v = v * 10 + (*p - '0');
    if (*p == '%') p++;
    while (isspace((unsigned char)*p)) p++;
    if (digits == 0 || *p != '\0' || v < 1 || v > 100) {
        set_why(why, why_len, "\"%s\" is not a compute share; expected a whole percentage from 1 to 100, e.g. 30 or 30%%", text == NULL ? "" : text);
        return -1;
    }
    *percent = v;
    return 0;
}

/* ---- per-device lists: "8Gi" or "0=8Gi,1=4Gi" or "GPU-abc...=8Gi" -------------------- */

typedef int (*item_parser)(const char *text, void *out, char *why, size_t why_len);

static int parse_memory_item(const char *text, void *out, char *why, size_t why_len) {
    gs_memory_limit *limit = out;
    const char *percent = strchr(text, '%');
    if (percent != NULL) {
        int p;
        if (gs_parse_percent(text, &p, why, why_len) != 0) {
            set_why(why, why_len, "\"%s\" is not a share of memory; expected a percentage from 1%% to 100%%", text);
            return -1;
        }
        limit->kind = GS_LIMIT_FRACTION;
        limit->fraction = p / 100.0;
        return 0;
    }
    uint64_t bytes;
    if (gs_parse_bytes(text, &bytes, why, why_len) != 0) return -1;
    limit->kind = GS_LIMIT_BYTES;
    limit->bytes = bytes;
    return 0;
}

static int parse_hami_memory_item(const char *text, void *out, char *why, size_t why_len) {
    gs_memory_limit *limit = out;
    uint64_t bytes;
    if (gs_parse_hami_bytes(text, &bytes, why, why_len) != 0) return -1;
    limit->kind = GS_LIMIT_BYTES;
    limit->bytes = bytes;
    return 0;
}

static int parse_compute_item(const char *text, void *out, char *why, size_t why_len) {
    return gs_parse_percent(text, out, why, why_len);
}

/* HAMi-core treats an SM limit of 0 or 100 as "no limit". */
static int parse_hami_compute_item(const char *text, void *out, char *why, size_t why_len) {
    int *percent = out;
    if (text != NULL && (strcmp(text, "0") == 0)) {
        *percent = 0;
        return 0;
    }
    if (gs_parse_percent(text, percent, why, why_len) != 0) return -1;
    if (*percent == 100) *percent = 0;
    return 0;
}

static int parse_key(const char *text, size_t len, gs_device_key *key) {
    key->ordinal = -1;
    key->uuid[0] = '\0';
    if (len == 0) return -1;
    if ((len > 4 && (strncmp(text, "GPU-", 4) == 0 || strncmp(text, "MIG-", 4) == 0))) {
        if (len >= sizeof key->uuid) return -1;
        memcpy(key->uuid, text, len);
        key->uuid[len] = '\0';
        return 0;
    }
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i]) || i >= 3) return -1;
        v = v * 10 + (text[i] - '0');
    }
    key->ordinal = v;
    return 0;
}

static gs_device_entry *entry_for(gs_config *c, const gs_device_key *key) {
    for (int i = 0; i < c->device_count; i++) {
        gs_device_entry *e = &c->devices[i];
        if (e->key.ordinal == key->ordinal && strcmp(e->key.uuid, key->uuid) == 0) return e;
    }
    if (c->device_count == GS_CONFIG_MAX_DEVICE_ENTRIES) return NULL;
    gs_device_entry *e = &c->devices[c->device_count++];
    memset(e, 0, sizeof *e);
    e->key = *key;
    return e;
}

typedef enum { FIELD_MEMORY, FIELD_COMPUTE } entry_field;

/*
 * Parses a whole-or-per-device value into a scratch config first, so a value with one bad
 * item changes nothing (all or nothing per variable).
 */
static int parse_device_list(gs_config *c, const char *value, entry_field field, item_parser parse, char *why, size_t why_len) {
    gs_config scratch = *c;
    if (strchr(value, '=') == NULL) {
        if (field == FIELD_MEMORY) {
            if (parse(value, &scratch.memory_all, why, why_len) != 0) return -1;
        } else if (parse(value, &scratch.compute_all_percent, why, why_len) != 0) {
            return -1;
        }
        *c = scratch;
        return 0;
    }
    char item[256];
    const char *p = value;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma == NULL ? strlen(p) : (size_t)(comma - p);
        if (len == 0 || len >= sizeof item) {
            set_why(why, why_len, "\"%s\" has an empty or overlong item; expected DEVICE=VALUE items separated by commas, e.g. 0=8Gi,1=4Gi", value);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        gs_device_key key;
        if (eq == NULL || parse_key(item, (size_t)(eq - item), &key) != 0) {
            set_why(why, why_len, "\"%s\": each item must be DEVICE=VALUE where DEVICE is a visible device index (0, 1, ...) or a GPU-/MIG- UUID", value);
            return -1;
        }
        gs_device_entry *e = entry_for(&scratch, &key);
        if (e == NULL) {
            set_why(why, why_len, "\"%s\" names more than 16 devices", value);
            return -1;
        }
        if (parse(eq + 1, field == FIELD_MEMORY ? (void *)&e->memory : (void *)&e->compute_percent, why, why_len) != 0) return -1;
        p += len;
        if (*p == ',') p++;
    }
    *c = scratch;
    return 0;
}

/* ---- loading -------------------------------------------------------------------------- */

typedef struct {
    gs_getenv_fn getenv_fn;
    void *env_ctx;
    gs_config_report_fn report;
    void *report_ctx;
    int problems;
} loader;

static const char *var(loader *l, const char *name) {
    const char *v = l->getenv_fn(l->env_ctx, name);
    return (v == NULL || v[0] == '\0') ? NULL : v;
}

static void problem(loader *l, const char *name, const char *message) {
    l->problems++;
    if (l->report != NULL) l->report(l->report_ctx, name, message);
}

/* Applies one variable through parse_device_list; 1 when it was set and valid. */
static int apply_list(loader *l, gs_config *c, const char *name, entry_field field, item_parser parse) {
    const char *value = var(l, name);
    if (value == NULL) return 0;
    char why[512];
    if (parse_device_list(c, value, field, parse, why, sizeof why) != 0) {
        problem(l, name, why);
        return 0;
    }
    return 1;
}

/* HAMi-core's indexed variables: CUDA_DEVICE_MEMORY_LIMIT_0, _1, ... */
static void apply_hami_indexed(loader *l, gs_config *c, const char *prefix, entry_field field, item_parser parse) {
    for (int i = 0; i < GS_CONFIG_MAX_DEVICE_ENTRIES; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s_%d", prefix, i);
        const char *value = var(l, name);
        if (value == NULL) continue;
        if (strlen(value) > 200) {
            problem(l, name, "is too long to be a limit");
            continue;
        }
        char list[300];
        snprintf(list, sizeof list, "%d=%s", i, value);
        char why[512];
        if (parse_device_list(c, list, field, parse, why, sizeof why) != 0) problem(l, name, why);
    }
}

static int parse_flag(loader *l, const char *name, bool *out) {
    const char *v = var(l, name);
    if (v == NULL) return 0;
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
            *out = strcmp(v, yes[i]) == 0;
            return 1;
        }
    }
    char why[256];
    snprintf(why, sizeof why, "\"%.100s\" is not a switch; expected 1 or 0 (true/false, yes/no, on/off)", v);
    problem(l, name, why);
    return 0;
}

static void load_priority(loader *l, gs_config *c) {
    const char *v = var(l, "GPUSHARE_PRIORITY");
    char why[256];
    if (v != NULL) {
        if (strcmp(v, "high") == 0) c->priority = GS_PRIORITY_HIGH;
        else if (strcmp(v, "normal") == 0) c->priority = GS_PRIORITY_NORMAL;
        else if (strcmp(v, "low") == 0) c->priority = GS_PRIORITY_LOW;
        else {
            snprintf(why, sizeof why, "\"%.100s\" is not a priority; expected high, normal or low", v);
            problem(l, "GPUSHARE_PRIORITY", why);
            v = NULL;
        }
        if (v != NULL) {
            c->priority_set = true;
            return;
        }
    }
    /* HAMi: nvidia.com/priority 0 is high, 1 is low (HAMi-core's default is 1, but only a
     * task that says so is ranked here: unset stays normal). */
    v = var(l, "CUDA_TASK_PRIORITY");
    if (v == NULL) return;
    if (strcmp(v, "0") == 0) c->priority = GS_PRIORITY_HIGH, c->priority_set = true;
    else if (strcmp(v, "1") == 0) c->priority = GS_PRIORITY_LOW, c->priority_set = true;
    else {
        snprintf(why, sizeof why, "\"%.100s\" is not a HAMi task priority; expected 0 (high) or 1 (low)", v);
        problem(l, "CUDA_TASK_PRIORITY", why);
    }
}

static void load_enum(loader *l, const char *name, const char *const *names, size_t count, int *out, const char *accepted) {
    const char *v = var(l, name);
    if (v == NULL) return;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = (int)i;
            return;
        }
    }
    char why[256];
    snprintf(why, sizeof why, "\"%.100s\" is not accepted; expected %s", v, accepted);
    problem(l, name, why);
}

static void load_region(loader *l, gs_config *c) {
    const char *names[] = {"GPUSHARE_REGION", "CUDA_DEVICE_MEMORY_SHARED_CACHE"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = var(l, names[i]);
        if (v == NULL) continue;
        if (strlen(v) >= sizeof c->region_path) {
            problem(l, names[i], "is longer than a path can be (4095 bytes)");
            continue;
        }
        strcpy(c->region_path, v);
        return;
    }
}

/* GPUSHARE_SWAP: the directory of the swap control socket (swap_ctl.c). */
static void load_swap(loader *l, gs_config *c) {
    const char *v = var(l, "GPUSHARE_SWAP");
    if (v == NULL || *v == '\0') return;
    if (strlen(v) >= sizeof c->swap_dir) {
        problem(l, "GPUSHARE_SWAP", "is longer than a path can be (4095 bytes)");
        return;
    }
    strcpy(c->swap_dir, v);
}

/* ---- GPUSHARE_SM_OFFSET (sm-partition placement): "64", or per ordinal "0=0,1=64" ---- */
static int parse_sm_count(const char *text, size_t len, int *out) {
    int v = 0;
    if (len == 0 || len > 5) return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i])) return -1;
        v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return 0;
}

static void load_sm_offset(loader *l, gs_config *c) {
    const char *v = var(l, "GPUSHARE_SM_OFFSET");
    int all = -1, per[GS_CONFIG_MAX_DEVICE_ENTRIES];
    for (int i = 0; i < GS_CONFIG_MAX_DEVICE_ENTRIES; i++) per[i] = -1;
    if (v == NULL) return;
    bool ok = true;
    if (strchr(v, '=') == NULL) {
        ok = parse_sm_count(v, strlen(v), &all) == 0;
    } else {
        for (const char *p = v; ok && *p != '\0';) {
            size_t len = strcspn(p, ","), eq = strcspn(p, "=");
            int dev = -1, sms = -1;
            ok = eq < len && parse_sm_count(p, eq, &dev) == 0 && dev < GS_CONFIG_MAX_DEVICE_ENTRIES &&
                 parse_sm_count(p + eq + 1, len - eq - 1, &sms) == 0;
            if (ok) per[dev] = sms;
            p += len;
            if (*p == ',') p++;
        }
    }
    if (!ok) {
        char why[256];
        snprintf(why, sizeof why, "\"%.100s\" is not an SM offset; expected a number of SMs (e.g. 64) or per device index 0=0,1=64", v);
        problem(l, "GPUSHARE_SM_OFFSET", why);
        return;
    }
    c->sm_offset_all = all;
    memcpy(c->sm_offset, per, sizeof per);
}

int gs_config_sm_offset(const gs_config *config, int ordinal) {
    if (ordinal >= 0 && ordinal < GS_CONFIG_MAX_DEVICE_ENTRIES && config->sm_offset[ordinal] >= 0) return config->sm_offset[ordinal];
    return config->sm_offset_all;
}

/* ---- GPUSHARE_COMPUTE_CLOCK: the saturated SM clock in MHz (100-10000), else learned ---- */
static void load_clock(loader *l, gs_config *c) {
    const char *v = var(l, "GPUSHARE_COMPUTE_CLOCK");
    int mhz = -1;
    if (v == NULL) return;
    if (parse_sm_count(v, strlen(v), &mhz) != 0 || mhz < 100 || mhz > 10000) {
        char why[200];
        snprintf(why, sizeof why, "\"%.60s\" is not a clock; expected the SM clock in MHz the work holds when it runs unlimited (100-10000, e.g. 1755)", v);
        problem(l, "GPUSHARE_COMPUTE_CLOCK", why);
        return;
    }
    c->compute_clock_mhz = (unsigned)mhz;
}

int gs_config_load(gs_config *out, gs_getenv_fn getenv_fn, void *env_ctx, gs_config_report_fn report, void *report_ctx) {
    loader l = {getenv_fn, env_ctx, report, report_ctx, 0};
    gs_config c;
    memset(&c, 0, sizeof c);
    c.priority = GS_PRIORITY_NORMAL;
    c.log_level = GS_LOG_WARN;
    c.sm_offset_all = -1;
    for (int i = 0; i < GS_CONFIG_MAX_DEVICE_ENTRIES; i++) c.sm_offset[i] = -1;

    /* Memory: GPUSHARE_MEMORY_LIMIT replaces every HAMi memory variable when it is valid. */
    gs_config hami = c;
    apply_list(&l, &hami, "CUDA_DEVICE_MEMORY_LIMIT", FIELD_MEMORY, parse_hami_memory_item);
    apply_hami_indexed(&l, &hami, "CUDA_DEVICE_MEMORY_LIMIT", FIELD_MEMORY, parse_hami_memory_item);
    apply_list(&l, &hami, "CUDA_DEVICE_SM_LIMIT", FIELD_COMPUTE, parse_hami_compute_item);
    apply_hami_indexed(&l, &hami, "CUDA_DEVICE_SM_LIMIT", FIELD_COMPUTE, parse_hami_compute_item);

    gs_config own = c;
    int own_memory = apply_list(&l, &own, "GPUSHARE_MEMORY_LIMIT", FIELD_MEMORY, parse_memory_item);
    int own_compute = apply_list(&l, &own, "GPUSHARE_COMPUTE_LIMIT", FIELD_COMPUTE, parse_compute_item);

    /* Merge: per field, ours when set, else HAMi's. Entries are matched by device key. */
    c.memory_all = own_memory ? own.memory_all : hami.memory_all;
    c.compute_all_percent = own_compute ? own.compute_all_percent : hami.compute_all_percent;
    const gs_config *sources[2] = {&hami, &own};
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < sources[s]->device_count; i++) {
            const gs_device_entry *src = &sources[s]->devices[i];
            gs_device_entry *dst = entry_for(&c, &src->key);
            if (dst == NULL) break;
            int memory_wins = (s == 1) ? own_memory : !own_memory;
            int compute_wins = (s == 1) ? own_compute : !own_compute;
            if (memory_wins && src->memory.kind != GS_LIMIT_NONE) dst->memory = src->memory;
            if (compute_wins && src->compute_percent != 0) dst->compute_percent = src->compute_percent;
        }
    }

    load_priority(&l, &c);
    static const char *const policy_names[] = {"hard", "share"};
    int policy = (int)c.compute_policy;
    load_enum(&l, "GPUSHARE_COMPUTE_POLICY", policy_names, 2, &policy, "hard or share");
    c.compute_policy = (gs_compute_policy)policy;
    static const char *const accounting_names[] = {"throughput", "gpu", "time"};
    int accounting = (int)c.compute_accounting;
    load_enum(&l, "GPUSHARE_COMPUTE_ACCOUNTING", accounting_names, 3, &accounting, "throughput, gpu or time");
    c.compute_accounting = (gs_compute_accounting)accounting;
    load_clock(&l, &c);
    static const char *const board_names[] = {"shared", "per-user"};
    int board = c.compute_board_per_user ? 1 : 0;
    load_enum(&l, "GPUSHARE_COMPUTE_BOARD", board_names, 2, &board, "shared or per-user");
    c.compute_board_per_user = board == 1;
    static const char *const isolation_names[] = {"time-slice", "sm-partition"};
    int isolation = (int)c.isolation;
    load_enum(&l, "GPUSHARE_ISOLATION", isolation_names, 2, &isolation, "time-slice or sm-partition");
    c.isolation = (gs_isolation)isolation;
    static const char *const level_names[] = {"error", "warn", "info", "debug"};
    int level = (int)c.log_level;
    load_enum(&l, "GPUSHARE_LOG_LEVEL", level_names, 4, &level, "error, warn, info or debug");
    c.log_level = (gs_log_level)level;
    parse_flag(&l, "GPUSHARE_OVERSUBSCRIBE", &c.oversubscribe);
    parse_flag(&l, "GPUSHARE_SCRUB", &c.scrub);
    parse_flag(&l, "GPUSHARE_OVERCOMMIT", &c.overcommit);
    load_region(&l, &c);
    load_swap(&l, &c);
    load_sm_offset(&l, &c);

    *out = c;
    return l.problems;
}

/* The driver hands out 16 bytes; whether they print as GPU- or MIG- depends on who prints
 * them (cuDeviceGetUuid has no prefix, NVML and nvidia-smi -L say MIG- for a MIG device),
 * and hex may come in either case. So two names are the same device when their bodies
 * after the prefix match, case aside. */
bool gs_uuid_same(const char *a, const char *b) {
    if (a == NULL || b == NULL) return false;
    if (strncasecmp(a, "GPU-", 4) == 0 || strncasecmp(a, "MIG-", 4) == 0) a += 4;
    if (strncasecmp(b, "GPU-", 4) == 0 || strncasecmp(b, "MIG-", 4) == 0) b += 4;
    return *a != '\0' && strcasecmp(a, b) == 0;
}

static const gs_device_entry *find_entry(const gs_config *c, int ordinal, const char *uuid, entry_field field) {
    /* A UUID entry is more specific than an ordinal one, so it wins when both match. */
    const gs_device_entry *by_ordinal = NULL;
    for (int i = 0; i < c->device_count; i++) {
        const gs_device_entry *e = &c->devices[i];
        int has = field == FIELD_MEMORY ? e->memory.kind != GS_LIMIT_NONE : e->compute_percent != 0;
        if (!has) continue;
        if (uuid != NULL && e->key.uuid[0] != '\0' && gs_uuid_same(e->key.uuid, uuid)) return e;
        if (e->key.ordinal >= 0 && e->key.ordinal == ordinal) by_ordinal = e;
    }
    return by_ordinal;
}

gs_memory_limit gs_config_memory_limit(const gs_config *config, int ordinal, const char *uuid) {
    const gs_device_entry *e = find_entry(config, ordinal, uuid, FIELD_MEMORY);
    return e != NULL ? e->memory : config->memory_all;
}

int gs_config_compute_limit(const gs_config *config, int ordinal, const char *uuid) {
    const gs_device_entry *e = find_entry(config, ordinal, uuid, FIELD_COMPUTE);
    return e != NULL ? e->compute_percent : config->compute_all_percent;
}

uint64_t gs_memory_limit_resolve(gs_memory_limit limit, uint64_t total_bytes) {
    switch (limit.kind) {
    case GS_LIMIT_BYTES: return limit.bytes < total_bytes ? limit.bytes : total_bytes;
    case GS_LIMIT_FRACTION: {
        /* Whole MiB, like the scheduler's resolution of a share, so both sides agree. */
        uint64_t mib = 1ull << 20;
        uint64_t bytes = (uint64_t)((long double)total_bytes * limit.fraction / mib) * mib;
        return bytes < total_bytes ? bytes : total_bytes;
    }
    case GS_LIMIT_NONE: break;
    }
    return UINT64_MAX;
}
