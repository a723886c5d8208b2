/*
 * The task's compute grants (grant.h; the file's layout and rules: gpushare_board.h "Grants").
 * Taken in the wrapper before it forks the command, so that the command's first launch finds
 * its entitlement already written by root, and freed by the same wrapper after the command
 * ended. A wrapper killed with its task (the group's SIGKILL) frees nothing: its entries' owner
 * pid is then gone, and every reader leaves them out, as every taker may take them over.
 */
#define _GNU_SOURCE
#include "grant.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../region/gpushare_board.h"

/* What the daemon asked for (GPUSHARE_EXEC_GRANT), checked as the library checks a grant. */
typedef struct grant_terms {
    uint32_t share_ppm;
    int32_t priority;
    uint32_t policy;
} grant_terms;

static int parse_terms(const char *text, grant_terms *out) {
    unsigned long share, priority, policy;
    char tail;
    if (text == NULL || sscanf(text, "%lu,%lu,%lu%c", &share, &priority, &policy, &tail) != 3) return -1;
    if (share == 0 || share > 1000000 || priority > 2 || (policy != 1 && policy != 2)) return -1;
    *out = (grant_terms){.share_ppm = (uint32_t)share, .priority = (int32_t)priority, .policy = (uint32_t)policy};
    return 0;
}

/* A board's path: its directory, the GPU's UUID and the uid its name gives (gs_board_h's naming). */
static int parse_board(const char *path, char *dir, size_t dir_size, char *uuid, size_t uuid_size, uint32_t *uid) {
    const char *base = strrchr(path, '/');
    base = base == NULL ? path : base + 1;
    size_t plen = strlen(GS_BOARD_FILE_PREFIX);
    const char *dot = strrchr(base, '.');
    if (strncmp(base, GS_BOARD_FILE_PREFIX, plen) != 0 || dot == NULL || dot <= base + plen || dot[1] != 'u') return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(dot + 2, &end, 10);
    if (errno != 0 || end == dot + 2 || *end != '\0' || dot[2] < '0' || dot[2] > '9' || v > UINT32_MAX) return -1;
    size_t dlen = (size_t)(base - path), ulen = (size_t)(dot - base) - plen;
    if (dlen >= dir_size || ulen >= uuid_size) return -1;
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
    memcpy(uuid, base + plen, ulen);
    uuid[ulen] = '\0';
    *uid = (uint32_t)v;
    return 0;
}

/* The GPU's grants file, open and mapped (made whole if new or short); NULL, said, when it cannot be. */
static gs_grants *grants_map(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    struct stat st;
    const char *step = fd < 0 ? "open" : fstat(fd, &st) != 0 ? "stat" : NULL;
    if (step == NULL && !S_ISREG(st.st_mode)) {
        step = "use";
        errno = EINVAL;
    }
    /* Ours alone to write: a file another could write would let it raise its own grants. */
    if (step == NULL && (st.st_uid != geteuid() || (st.st_mode & 07777) != 0644) &&
        (fchown(fd, geteuid(), getegid()) != 0 || fchmod(fd, 0644) != 0))
        step = "own";
    if (step == NULL && st.st_size < (off_t)sizeof(gs_grants) && ftruncate(fd, sizeof(gs_grants)) != 0) step = "size";
    void *p = step == NULL ? mmap(NULL, sizeof(gs_grants), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (step == NULL && p == MAP_FAILED) step = "map";
    int err = errno;
    if (fd >= 0) close(fd);
    if (step != NULL) {
        fprintf(stderr, "gpushare-exec: cannot %s the compute grants %s (%s): compute is limited for this task alone\n",
                step, path, strerror(err));
        return NULL;
    }
    gs_grants *g = p;
    if (!gs_board_header_ready(&g->magic, &g->version, &g->entries, GS_GRANTS_MAGIC, GS_GRANTS_VERSION, GS_GRANTS_ENTRIES)) {
        fprintf(stderr, "gpushare-exec: %s is not a compute grants file of version %u: compute is limited for this task alone\n",
                path, GS_GRANTS_VERSION);
        munmap(p, sizeof(gs_grants));
        return NULL;
    }
    return g;
}

/* Takes a free entry (or one whose wrapper is gone) and writes the terms; -1: all taken. */
static int take_entry(gs_grants *g, uint64_t token, uint32_t uid, const grant_terms *t) {
    for (int i = 0; i < (int)GS_GRANTS_ENTRIES; i++) {
        gs_grant *e = &g->grant[i];
        uint64_t o = atomic_load(&e->owner);
        if (o != 0 && !(kill((pid_t)(o >> GS_BOARD_OWNER_PID_SHIFT), 0) != 0 && errno == ESRCH)) continue;
        if (!atomic_compare_exchange_strong(&e->owner, &o, token)) continue;
        atomic_store(&e->live, 0);
        atomic_store(&e->uid, uid);
        atomic_store(&e->share_ppm, t->share_ppm);
        atomic_store(&e->priority, t->priority);
        atomic_store(&e->policy, t->policy);
        atomic_store(&e->live, 1);
        return i;
    }
    return -1;
}

void grants_take(grants_taken *t) {
    t->n = 0;
    const char *terms_text = getenv("GPUSHARE_EXEC_GRANT");
    if (terms_text == NULL) return;
    (void)unsetenv(GS_GRANTS_ENV); /* only the indexes taken here speak for the task */
    grant_terms terms;
    const char *boards = getenv("GPUSHARE_EXEC_BOARDS");
    int parsed = parse_terms(terms_text, &terms);
    if (parsed != 0)
        fprintf(stderr, "gpushare-exec: GPUSHARE_EXEC_GRANT=%s is not SHARE_PPM,PRIORITY,POLICY: compute is limited for this task alone\n",
                terms_text);
    (void)unsetenv("GPUSHARE_EXEC_GRANT"); /* the command never sees it (terms_text is gone now) */
    if (parsed != 0) return;
    if (boards == NULL) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t token = ((uint64_t)(uint32_t)getpid() << GS_BOARD_OWNER_PID_SHIFT) | (((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec) & 0xffffffffu) | 1u;
    size_t cap = strlen(boards) + 1;
    char *list = malloc(cap), *value = malloc(cap + 16 * GRANTS_MAX);
    if (list == NULL || value == NULL) {
        free(list);
        free(value);
        fprintf(stderr, "gpushare-exec: no memory for the compute grants: compute is limited for this task alone\n");
        return;
    }
    memcpy(list, boards, cap);
    size_t used = 0;
    value[0] = '\0';
    for (char *path = list, *next; path != NULL && path[0] != '\0' && t->n < GRANTS_MAX; path = next) {
        next = strchr(path, ':');
        if (next != NULL) *next++ = '\0';
        char dir[4096], uuid[256], file[4500];
        uint32_t uid;
        if (parse_board(path, dir, sizeof dir, uuid, sizeof uuid, &uid) != 0) {
            fprintf(stderr, "gpushare-exec: %s is not named as a compute board: no grant for it, compute is limited for this task alone\n", path);
            continue;
        }
        (void)snprintf(file, sizeof file, "%s" GS_BOARD_FILE_PREFIX "%s" GS_GRANTS_FILE_SUFFIX, dir, uuid);
        gs_grants *g = grants_map(file);
        if (g == NULL) continue;
        int i = take_entry(g, token, uid, &terms);
        if (i < 0) {
            fprintf(stderr, "gpushare-exec: the compute grants %s are all taken (%u tasks): compute is limited for this task alone\n",
                    file, GS_GRANTS_ENTRIES);
            munmap(g, sizeof *g);
            continue;
        }
        t->held[t->n++] = (grant_held){.map = g, .index = i, .token = token};
        used += (size_t)snprintf(value + used, cap + 16 * GRANTS_MAX - used, "%s%s=%d", used ? "," : "", uuid, i);
    }
    if (t->n > 0 && setenv(GS_GRANTS_ENV, value, 1) != 0) {
        fprintf(stderr, "gpushare-exec: cannot set %s: compute is limited for this task alone\n", GS_GRANTS_ENV);
        grants_release(t);
    }
    free(list);
    free(value);
}

void grants_release(grants_taken *t) {
    for (int k = 0; k < t->n; k++) {
        gs_grants *g = t->held[k].map;
        gs_grant *e = &g->grant[t->held[k].index];
        uint64_t mine = t->held[k].token;
        if (atomic_load(&e->owner) == mine) {
            atomic_store(&e->live, 0);
            (void)atomic_compare_exchange_strong(&e->owner, &mine, 0);
        }
        munmap(g, sizeof *g);
    }
    t->n = 0;
}
