/* The launch claim (see claim.h). */
#include "claim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* This process's start time in clock ticks since boot (/proc/self/stat field 22); 0 if unreadable. */
static unsigned long long self_start_time(void) {
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (close(fd) != 0 || n <= 0) return 0;
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: count fields after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL) return 0;
    p++;
    for (int field = 2; field < 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL) return 0;
        p++;
    }
    char *end;
    errno = 0;
    unsigned long long t = strtoull(p, &end, 10);
    return errno != 0 || end == p ? 0 : t;
}

/*
 * Writes the claim's whole text to a new file at `tmp`. Not fsynced: the claim must outlive the
 * daemon, not the machine (after a power loss no task process survives, and the daemon's own
 * last commits may be gone too: its database runs with synchronous=NORMAL), and an fsync of the
 * file and of its directory would delay every task's first instruction by milliseconds on ext4.
 */
static int write_claim_file(const char *tmp, const char *text) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    int rc = write(fd, text, n) == (ssize_t)n ? 0 : -1;
    if (close(fd) != 0) rc = -1;
    return rc;
}

claim_result_t claim_launch(const char *path) {
    unsigned long long start = self_start_time();
    if (start == 0) {
        fprintf(stderr, "gpushare-exec: cannot read /proc/self/stat for the launch claim\n");
        return CLAIM_ERROR;
    }
    char text[64];
    snprintf(text, sizeof text, "%ld %llu\n", (long)getpid(), start);
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (tmp == NULL) {
        fprintf(stderr, "gpushare-exec: out of memory\n");
        return CLAIM_ERROR;
    }
    /* Private to this process (its pid in the name), so two wrappers never share it. */
    snprintf(tmp, len, "%s.%ld.tmp", path, (long)getpid());
    claim_result_t result = CLAIM_ERROR;
    if (write_claim_file(tmp, text) != 0) {
        fprintf(stderr, "gpushare-exec: cannot write %s: %s\n", tmp, strerror(errno));
    } else if (link(tmp, path) == 0) {
        result = CLAIM_TAKEN_BY_US;
    } else if (errno == EEXIST) {
        result = CLAIM_HELD_BY_OTHER;
    } else {
        fprintf(stderr, "gpushare-exec: cannot claim %s: %s\n", path, strerror(errno));
    }
    /* Once the claim is ours the command must run: what fails after this is only said. */
    if (unlink(tmp) != 0 && errno != ENOENT) fprintf(stderr, "gpushare-exec: cannot remove %s: %s\n", tmp, strerror(errno));
    free(tmp);
    return result;
}
