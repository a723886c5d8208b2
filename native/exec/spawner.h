/*
 * spawner: `gpushare-exec --spawner`, the daemon's long-lived process starter (see spawner.c).
 *
 * Why a process of its own: forking the daemon (a Node.js process of hundreds of megabytes)
 * costs milliseconds of its event loop per task, and Node's spawn waits for the child's exec on
 * that loop; this process is a few hundred kilobytes, forks in microseconds, and waits for
 * execs and exits off the daemon's loop. The daemon talks to it over its stdin and stdout
 * (src/node/spawner.ts is the other end). Both ends run on one machine, so integers are in the
 * host's byte order.
 *
 * Request (stdin): a uint32 length of what follows, then a spawn_request header and, after it,
 * NUL-terminated strings: stdout path, stderr path, working directory, argc arguments (the
 * first is the program's absolute path), envc environment entries. An empty stdout/stderr path
 * means /dev/null; an empty working directory means this process's own. Missing directories above a log file
 * are made (0700).
 *
 * Reply (stdout): spawn_reply records, in order:
 *   SPAWN_STARTED  the program was exec'd: pid, and its start time from /proc (clock ticks)
 *   SPAWN_FAILED   nothing runs: value = errno, start_time = the step that failed (SPAWN_STEP_*)
 *   SPAWN_EXITED   a process started here ended: pid, value = its raw wait status; tag 0
 * A pid's SPAWN_EXITED always comes before any later SPAWN_STARTED that reuses the pid.
 *
 * End of input (the daemon exited or closed it) ends the spawner; what it started runs on
 * (every program leads a session of its own), reparented, as a restarted daemon expects.
 */
#ifndef GPUSHARE_EXEC_SPAWNER_H
#define GPUSHARE_EXEC_SPAWNER_H

#include <stdint.h>

enum { SPAWN_OP_SPAWN = 'S' };

struct spawn_request {
    uint8_t op;
    uint8_t pad[3];
    /* Echoed in the reply, so the daemon knows which request it answers. */
    uint32_t tag;
    /* >= 0: the child takes this user and group (no supplementary groups) before exec. */
    int32_t uid;
    int32_t gid;
    uint32_t argc;
    uint32_t envc;
};

enum { SPAWN_STARTED = 'P', SPAWN_FAILED = 'F', SPAWN_EXITED = 'X' };

/* Where a failed spawn failed (SPAWN_FAILED's start_time). */
enum {
    SPAWN_STEP_REQUEST = 1, /* the request is malformed */
    SPAWN_STEP_FORK = 2,
    SPAWN_STEP_STDOUT = 3,
    SPAWN_STEP_STDERR = 4,
    SPAWN_STEP_CWD = 5,
    SPAWN_STEP_USER = 6,
    SPAWN_STEP_EXEC = 7,
};

struct spawn_reply {
    uint32_t kind;
    uint32_t tag;
    int32_t pid;
    int32_t value;
    uint64_t start_time;
};

_Static_assert(sizeof(struct spawn_request) == 24, "the request header is 24 bytes (spawner.ts reads it so)");
_Static_assert(sizeof(struct spawn_reply) == 24, "a reply is 24 bytes (spawner.ts reads it so)");

/* The spawner's main loop; returns the process's exit status. */
int spawner_main(void);

#endif
