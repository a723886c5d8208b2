/*
 * The spawner's protocol end to end, under ASan + UBSan: runs `gpushare-exec --spawner` (the
 * sanitized build named by argv[1]) on two pipes, sends it requests (good ones, failing ones,
 * malformed ones, a burst) and checks every reply; then closes its input and expects a clean
 * exit (LeakSanitizer included). src/node/spawner.test.ts covers the daemon's end.
 */
#define _GNU_SOURCE
#include "spawner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* check(): the shim tests' counter that reports and carries on. */
#include "../shim/tests/test_check.h"

struct conn {
    int to;   /* the spawner's stdin */
    int from; /* its stdout */
    pid_t pid;
};

/* Sends one request: header fields (announcing `announced_envc` entries), then the strings. */
static void send_raw(const struct conn *c, uint32_t tag, const char *cwd, const char *const *argv, uint32_t argc, const char *const *env, uint32_t envc, uint32_t announced_envc) {
    unsigned char buf[8192];
    struct spawn_request h = {.op = SPAWN_OP_SPAWN, .tag = tag, .uid = -1, .gid = -1, .argc = argc, .envc = announced_envc};
    size_t at = sizeof(uint32_t);
    memcpy(buf + at, &h, sizeof h);
    at += sizeof h;
    const char *fixed[] = {"", "", cwd};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(fixed[i]) + 1;
        memcpy(buf + at, fixed[i], n);
        at += n;
    }
    for (uint32_t i = 0; i < argc + envc; i++) {
        const char *s = i < argc ? argv[i] : env[i - argc];
        size_t n = strlen(s) + 1;
        memcpy(buf + at, s, n);
        at += n;
    }
    uint32_t len = (uint32_t)(at - sizeof(uint32_t));
    memcpy(buf, &len, sizeof len);
    check(write(c->to, buf, at) == (ssize_t)at, "write request: %s", strerror(errno));
}

static void send_request(const struct conn *c, uint32_t tag, const char *cwd, const char *const *argv, uint32_t argc, const char *const *env, uint32_t envc) {
    send_raw(c, tag, cwd, argv, argc, env, envc, envc);
}

static int read_reply(const struct conn *c, struct spawn_reply *r) {
    size_t got = 0;
    while (got < sizeof *r) {
        ssize_t n = read(c->from, (char *)r + got, sizeof *r - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

/* The next reply that is not an exit; exits seen on the way are counted. */
static struct spawn_reply answer(const struct conn *c, int *exits, int *exit_codes_sum) {
    struct spawn_reply r;
    for (;;) {
        if (read_reply(c, &r) != 0) {
            memset(&r, 0, sizeof r);
            check(0, "the spawner closed its output");
            return r;
        }
        if (r.kind != SPAWN_EXITED) return r;
        (*exits)++;
        if (WIFEXITED(r.value)) *exit_codes_sum += WEXITSTATUS(r.value);
    }
}

/* The gpushare-exec under test (argv[1]): set once by main, for the scenario (which takes no arguments). */
static const char *exec_path;

static void protocol(void) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) {
        check(0, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execl(exec_path, exec_path, "--spawner", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    struct conn c = {.to = in[1], .from = out[0], .pid = pid};
    int exits = 0, codes = 0;

    /* A program that runs: its pid and a start time come back, then its exit. */
    const char *sh[] = {"/bin/sh", "-c", "exit 7"};
    send_request(&c, 1, "/", sh, 3, NULL, 0);
    struct spawn_reply r = answer(&c, &exits, &codes);
    check(r.kind == SPAWN_STARTED && r.tag == 1 && r.pid > 0 && r.start_time > 0, "start: kind %c tag %u pid %d start %llu", r.kind, r.tag, r.pid, (unsigned long long)r.start_time);

    /* Failures: where and why. */
    const char *missing[] = {"/nonexistent-gpushare-test/program"};
    send_request(&c, 2, "/", missing, 1, NULL, 0);
    r = answer(&c, &exits, &codes);
    check(r.kind == SPAWN_FAILED && r.tag == 2 && r.value == ENOENT && r.start_time == SPAWN_STEP_EXEC, "missing program: kind %c errno %d step %llu", r.kind, r.value, (unsigned long long)r.start_time);
    const char *t[] = {"/bin/true"};
    send_request(&c, 3, "/nonexistent-gpushare-test", t, 1, NULL, 0);
    r = answer(&c, &exits, &codes);
    check(r.kind == SPAWN_FAILED && r.tag == 3 && r.value == ENOENT && r.start_time == SPAWN_STEP_CWD, "missing cwd: kind %c errno %d step %llu", r.kind, r.value, (unsigned long long)r.start_time);

    /* Malformed: more strings announced than sent; a header cut short. Refused, and it goes on. */
    send_raw(&c, 4, "/", t, 1, NULL, 0, 3);
    r = answer(&c, &exits, &codes);
    check(r.kind == SPAWN_FAILED && r.tag == 4 && r.value == EINVAL && r.start_time == SPAWN_STEP_REQUEST, "malformed: kind %c errno %d step %llu", r.kind, r.value, (unsigned long long)r.start_time);
    unsigned char shortreq[8] = {4, 0, 0, 0, 'S', 0, 0, 0};
    check(write(c.to, shortreq, sizeof shortreq) == (ssize_t)sizeof shortreq, "write short");
    r = answer(&c, &exits, &codes);
    check(r.kind == SPAWN_FAILED && r.value == EINVAL && r.start_time == SPAWN_STEP_REQUEST, "short header: kind %c errno %d", r.kind, r.value);

    /* A burst, with an environment: every one answered, in order. */
    const char *env[] = {"CODE=1"};
    const char *code[] = {"/bin/sh", "-c", "exit $CODE"};
    for (uint32_t i = 0; i < 40; i++) send_request(&c, 100 + i, "", code, 3, env, 1);
    for (uint32_t i = 0; i < 40; i++) {
        r = answer(&c, &exits, &codes);
        check(r.kind == SPAWN_STARTED && r.tag == 100 + i, "burst %u: kind %c tag %u", i, r.kind, r.tag);
    }
    /* 41 programs ran: 1 exit of 7, 40 of 1. */
    while (exits < 41) {
        if (read_reply(&c, &r) != 0) break;
        check(r.kind == SPAWN_EXITED, "only exits are left, got %c", r.kind);
        exits++;
        if (WIFEXITED(r.value)) codes += WEXITSTATUS(r.value);
    }
    check(exits == 41 && codes == 47, "exits %d, codes summing to %d (want 41, 47)", exits, codes);

    /* End of input ends it cleanly (sanitizers report through its exit status). */
    close(c.to);
    int st;
    check(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the spawner's own exit: status %d", st);
    close(c.from);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: spawner_test PATH/TO/gpushare-exec\n");
        return 2;
    }
    exec_path = argv[1];
    scenario = "spawner protocol";
    const test_scenario all[] = {{"spawner protocol", protocol}};
    return run_scenario(all, 1);
}
