/*
 * sandbox: what the task's process becomes between fork and exec (see sandbox.c). The daemon
 * asks for it through variables in the wrapper's environment, removed before the command runs:
 *
 *   GPUSHARE_EXEC_CGROUP  a cgroup v2 directory the task joins, created if missing (with its
 *                         parent): everything the task starts stays inside
 *   GPUSHARE_EXEC_UID     the unprivileged user it runs as
 *   GPUSHARE_EXEC_OWN_DIR its own directory, created if missing and given to that user (0700)
 *   GPUSHARE_EXEC_GID     its primary group
 *   GPUSHARE_EXEC_GROUPS  its supplementary groups, comma-separated (absent or empty: none)
 *   GPUSHARE_EXEC_BOARDS  its user's compute boards, one per GPU of the task (paths, ':'-separated;
 *                         native/shim/COMPUTE.md "Boards per user"): made if missing, given to the
 *                         user (0644), and brought back to a board's size if the user shrank one;
 *                         the task's grants on those GPUs are the wrapper's (grant.h), before the fork
 *
 * None set: the command runs as the wrapper does (a daemon that is not root); the boards are
 * then made the wrapper's user's.
 */
#ifndef GPUSHARE_EXEC_SANDBOX_H
#define GPUSHARE_EXEC_SANDBOX_H

/* Joins the cgroup, makes the task's own directory, then drops to the user (groups, gid, uid,
 * no new privileges), in the child, just before exec. 0 on success; -1 with errno set and a line on stderr otherwise. */
int sandbox_enter(void);

/* In the wrapper (still root) once the command has ended: empties the task's own directory with
 * its user's file-system rights (setfsuid, no process to start), all but its `region` and at
 * most a few thousand entries (the daemon removes the rest, sandbox.ts removeOwnDir). 0 when
 * there is nothing left but the region; -1 otherwise (nothing to report: the daemon cleans up). */
int sandbox_clean_own_dir(void);

#endif
