/*
 * The launch claim: the first thing gpushare-exec does, before it runs anything. A task is
 * launched at most once in its life; the claim file makes that so even when two wrappers are
 * started for it (a daemon that crashed between spawning the wrapper and recording it, then a
 * restarted daemon that spawned another). Only the wrapper that creates the claim runs the
 * command; any other finds it taken and exits at once with EXIT_CLAIM_TAKEN, running nothing
 * and writing no status file (the status file is the winner's).
 *
 * The claim holds "PID START_TIME\n": the winner's pid and its start time in clock ticks since
 * boot (/proc/PID/stat field 22), so a reader tells a reused pid apart. It appears whole or
 * not at all (written to a private temporary file, then link(2)ed into place, which fails
 * with EEXIST when another wrapper got there first), before the command runs. It outlives the
 * daemon, like the daemon's own commits; not a power loss (see claim.c).
 */
#ifndef GPUSHARE_EXEC_CLAIM_H
#define GPUSHARE_EXEC_CLAIM_H

/* The wrapper's exit status when another wrapper holds the claim (the command did not run here). */
enum { EXIT_CLAIM_TAKEN = 120 };

typedef enum { CLAIM_TAKEN_BY_US = 0, CLAIM_HELD_BY_OTHER = 1, CLAIM_ERROR = -1 } claim_result_t;

/* Claims the launch at `path` for this process; says on stderr why when it cannot. */
claim_result_t claim_launch(const char *path);

#endif
