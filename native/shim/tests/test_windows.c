/* test_windows.c: the layout of a period (compute_windows.c), table-driven, under ASan/UBSan. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "compute_windows.h"
#include "test_check.h"

#define MS UINT64_C(1000000)
#define S (1000 * MS)
#define PCT(p) ((uint32_t)(p) * (GS_WINDOWS_PPM / 100))
/* gs_priority */
#define LOW 0
#define NORMAL 1
#define HIGH 2
#define HARD(pct, prio) {PCT(pct), prio, false}
#define SHARE(pct, prio) {PCT(pct), prio, true}

typedef struct row {
    const char *name;
    uint64_t period_ns;
    int n;
    gs_window_holder h[8];
    gs_window want[8];
} row;

static const row rows[] = {
    {"alone, hard 30%: 300 ms, then time nobody holds", S, 1, {HARD(30, NORMAL)}, {{0, 300 * MS}}},
    {"alone, share 30%: the whole period", S, 1, {SHARE(30, NORMAL)}, {{0, S}}},
    {"hard 30% + share 30% at one level (COMPUTE.md's example)", S, 2, {HARD(30, NORMAL), SHARE(30, NORMAL)},
     {{0, 300 * MS}, {300 * MS, 700 * MS}}},
    {"share before hard in slot order: hard still gets its share, share the rest, in slot order", S, 2,
     {SHARE(30, NORMAL), HARD(30, NORMAL)}, {{0, 700 * MS}, {700 * MS, 300 * MS}}},
    {"two hard processes side by side, the rest held by nobody", S, 2, {HARD(30, NORMAL), HARD(50, NORMAL)},
     {{0, 300 * MS}, {300 * MS, 500 * MS}}},
    {"hard shares past 100% are cut where the period ends", S, 3, {HARD(70, NORMAL), HARD(50, NORMAL), HARD(10, NORMAL)},
     {{0, 700 * MS}, {700 * MS, 300 * MS}, {S, 0}}},
    {"share processes split what is left in proportion to their shares", S, 2, {SHARE(20, NORMAL), SHARE(60, NORMAL)},
     {{0, 250 * MS}, {250 * MS, 750 * MS}}},
    {"three equal shares of 333333 ppm: 333333333 ns each, the last ns held by nobody", S, 3,
     {{333333, NORMAL, true}, {333333, NORMAL, true}, {333333, NORMAL, true}},
     {{0, 333333333}, {333333333, 333333333}, {666666666, 333333333}}},
    {"a priority without a limit (share 100%) beside a hard 30%: the rest", S, 2, {SHARE(100, NORMAL), HARD(30, NORMAL)},
     {{0, 700 * MS}, {700 * MS, 300 * MS}}},
    {"higher priority first, whatever the slot order", S, 2, {HARD(30, NORMAL), HARD(20, HIGH)},
     {{200 * MS, 300 * MS}, {0, 200 * MS}}},
    {"a higher-priority share process takes everything: lower levels yield", S, 3,
     {HARD(30, LOW), SHARE(10, HIGH), SHARE(50, NORMAL)}, {{S, 0}, {0, S}, {S, 0}}},
    {"a lower level gets what the higher levels leave", S, 3, {SHARE(10, LOW), HARD(30, HIGH), HARD(20, NORMAL)},
     {{500 * MS, 500 * MS}, {0, 300 * MS}, {300 * MS, 200 * MS}}},
    {"within a level, slot order (stable)", S, 4,
     {HARD(10, NORMAL), HARD(10, HIGH), HARD(20, NORMAL), HARD(5, HIGH)},
     {{150 * MS, 100 * MS}, {0, 100 * MS}, {250 * MS, 200 * MS}, {100 * MS, 50 * MS}}},
    {"a hard share of 0 gets no window", S, 2, {HARD(0, NORMAL), HARD(40, NORMAL)}, {{0, 0}, {0, 400 * MS}}},
    {"another period: 100 ms, hard 30% + share 20%", 100 * MS, 2, {HARD(30, NORMAL), SHARE(20, NORMAL)},
     {{0, 30 * MS}, {30 * MS, 70 * MS}}},
    {"no one wants the GPU: nothing laid out", S, 0, {{0}}, {{0}}},
};

static void test_rows(void)
{
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const row *t = &rows[r];
        gs_window got[8];
        memset(got, 0xee, sizeof got);
        int rc = gs_windows_lay_out(t->h, t->n, t->period_ns, got);
        check(rc == 0, "%s: returned %d", t->name, rc);
        for (int i = 0; rc == 0 && i < t->n; i++)
            check(got[i].off == t->want[i].off && got[i].len == t->want[i].len,
                  "%s: holder %d got [%llu, +%llu), want [%llu, +%llu)", t->name, i, (unsigned long long)got[i].off,
                  (unsigned long long)got[i].len, (unsigned long long)t->want[i].off, (unsigned long long)t->want[i].len);
    }
}

/* Windows never overlap and never pass the period's end, for any mix of up to 64 holders. */
static void test_disjoint(void)
{
    gs_window_holder h[GS_WINDOWS_MAX];
    gs_window w[GS_WINDOWS_MAX];
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        int n = 1 + (int)(seed % GS_WINDOWS_MAX);
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            h[i] = (gs_window_holder){.share_ppm = (seed >> 8) % (GS_WINDOWS_PPM + 1), .priority = (int32_t)(seed % 3),
                                      .shares = (seed >> 4) & 1};
        }
        if (gs_windows_lay_out(h, n, S, w) != 0) {
            check(0, "layout %d: %d holders refused", round, n);
            continue;
        }
        int bad = -1;
        for (int i = 0; i < n && bad < 0; i++) {
            bool overlap = w[i].off + w[i].len > S;
            for (int j = 0; j < i; j++)
                overlap |= w[i].len > 0 && w[j].len > 0 && w[i].off < w[j].off + w[j].len && w[j].off < w[i].off + w[i].len;
            bad = overlap ? i : -1;
        }
        check(bad < 0, "layout %d: holder %d overlaps an earlier one or ends past the period", round, bad);
    }
}

static void test_bad_count(void)
{
    gs_window_holder h[1] = {HARD(30, NORMAL)};
    int counts[] = {-1, GS_WINDOWS_MAX + 1};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        gs_window w[1] = {{7, 7}};
        check(gs_windows_lay_out(h, counts[k], S, w) == -1 && w[0].off == 7 && w[0].len == 7,
              "%d holders: not refused, or the windows were written", counts[k]);
    }
}

static void test_all(void)
{
    test_rows();
    test_disjoint();
    test_bad_count();
}

int main(void)
{
    static const test_scenario all[] = {{"test_windows", test_all}};
    scenario = all[0].name;
    return run_scenario(all, 1);
}
