/*
 * tests/unit/testutil.h — helpers shared by the unit tests.
 */
#ifndef BG_TEST_UNIT_UTIL_H
#define BG_TEST_UNIT_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* rm -r, without following symlinks. Returns 0 when everything went. */
__attribute__((unused)) static int rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[4096];
        snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
        rc |= rm_tree(child);
    }
    closedir(d);
    return rmdir(path) | rc;
}

#endif
