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

/* The windows' part of the gate (gs_windows_confined, gs_windows_gate): holder 0 asks at `phase`. */
#define TP GS_ACCOUNT_THROUGHPUT
#define GPU GS_ACCOUNT_GPU
#define TIME GS_ACCOUNT_TIME
#define NONE UINT64_MAX
typedef struct gate_row {
    const char *name;
    int n;
    gs_window_holder h[4];
    gs_compute_accounting acc;
    uint64_t phase;
    bool confined;
    uint64_t wait, room;
} gate_row;

static const gate_row gate_rows[] = {
    {"alone, hard 30%, throughput, in its window: goes, queue up to its end", 1, {HARD(30, NORMAL)}, TP, 100 * MS, true, 0, 200 * MS},
    {"alone, hard 30%, throughput, past its window: held to the next period's window", 1, {HARD(30, NORMAL)}, TP, 500 * MS, true, 500 * MS, 0},
    {"alone, hard 30%, throughput, at its window's end: held", 1, {HARD(30, NORMAL)}, TP, 300 * MS, true, 700 * MS, 0},
    {"alone, hard 30%, gpu accounting, past its window: time nobody holds is free", 1, {HARD(30, NORMAL)}, GPU, 500 * MS, false, 0, NONE},
    {"alone, hard 30%, time accounting, past its window: free", 1, {HARD(30, NORMAL)}, TIME, 500 * MS, false, 0, NONE},
    {"alone, share 30%, throughput: not confined (the whole period is its window)", 1, {SHARE(30, NORMAL)}, TP, 500 * MS, false, 0, NONE},
    {"a priority without a limit (share 100%): not confined", 1, {SHARE(100, HIGH)}, TP, 900 * MS, false, 0, NONE},
    {"hard 100%: not confined (its window is the period)", 1, {HARD(100, NORMAL)}, TP, 900 * MS, false, 0, NONE},
    {"hard 30% after a high hard 70%, throughput, before its window: held to it", 2, {HARD(30, NORMAL), HARD(70, HIGH)}, TP, 100 * MS, true, 600 * MS, 0},
    {"hard 30% after a high hard 70%, in its window: queue to its end (the other's next window starts there too)", 2,
     {HARD(30, NORMAL), HARD(70, HIGH)}, TP, 800 * MS, true, 0, 200 * MS},
    {"hard 30% + hard 50%, throughput, in time nobody holds: held to the next period", 2, {HARD(30, NORMAL), HARD(50, NORMAL)}, TP, 900 * MS, true, 100 * MS, 0},
    {"hard 30% + hard 50%, gpu accounting, in time nobody holds: goes, queue to the other's next window", 2,
     {HARD(30, NORMAL), HARD(50, NORMAL)}, GPU, 900 * MS, false, 0, 400 * MS},
    {"hard 30% + hard 50%, throughput, near its end: the other's window and its own end agree", 2,
     {HARD(30, NORMAL), HARD(50, NORMAL)}, TP, 250 * MS, true, 0, 50 * MS},
    {"hard 30% + hard 50%, time accounting, in the other's window: held to its end", 2, {HARD(30, NORMAL), HARD(50, NORMAL)}, TIME, 400 * MS, false, 400 * MS, 0},
    {"a low hard 30% under a high share process: no window, held while the other's lasts", 2, {HARD(30, LOW), SHARE(10, HIGH)}, TP, 500 * MS, true, 500 * MS, 0},
};

static void test_gate(void)
{
    for (size_t r = 0; r < sizeof gate_rows / sizeof gate_rows[0]; r++) {
        const gate_row *t = &gate_rows[r];
        gs_window win[4], others[4];
        check(gs_windows_lay_out(t->h, t->n, S, win) == 0, "%s: layout", t->name);
        int n = 0;
        for (int i = 1; i < t->n; i++)
            if (win[i].len > 0)
                others[n++] = win[i];
        bool confined = gs_windows_confined(&t->h[0], t->acc);
        gs_window_gate g = gs_windows_gate(win[0], confined, others, n, t->phase, S);
        check(confined == t->confined && g.wait == t->wait && g.room == t->room,
              "%s: confined %d wait %llu room %llu, want %d %llu %llu", t->name, confined, (unsigned long long)g.wait,
              (unsigned long long)g.room, t->confined, (unsigned long long)t->wait, (unsigned long long)t->room);
    }
}

static void test_all(void)
{
    test_rows();
    test_gate();
    test_disjoint();
    test_bad_count();
}

int main(void)
{
    static const test_scenario all[] = {{"test_windows", test_all}};
    scenario = all[0].name;
    return run_scenario(all, 1);
}
