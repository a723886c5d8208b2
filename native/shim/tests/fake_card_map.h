/*
 * fake_card_map.h: the fake driver's shared card file (fake_cuda_busy.h: what every process on
 * the fake GPU holds), mapped for a test to read what the card holds; the first process's cuInit
 * makes it in $GPUSHARE_FAKE_CUDA_BUSY_DIR. Include after test_check.h and fake_cuda_busy.h.
 */
#ifndef FAKE_CARD_MAP_H
#define FAKE_CARD_MAP_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static inline fake_cuda_shared_memory_t *fake_card_map(void)
{
    const char *dir = getenv("GPUSHARE_FAKE_CUDA_BUSY_DIR");
    DIR *d = dir != NULL ? opendir(dir) : NULL;
    char path[512] = "";
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        if (strlen(e->d_name) > 4 && strcmp(e->d_name + strlen(e->d_name) - 4, ".mem") == 0)
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (d != NULL)
        closedir(d);
    int fd = path[0] ? open(path, O_RDWR | O_CLOEXEC) : -1;
    void *p = fd >= 0 ? mmap(NULL, sizeof(fake_cuda_shared_memory_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (fd >= 0)
        close(fd);
    check(p != MAP_FAILED, "the fake's card file in %s", dir ? dir : "(GPUSHARE_FAKE_CUDA_BUSY_DIR unset)");
    return p == MAP_FAILED ? NULL : p;
}

#endif
