/* node/cleanup.c — `branchgate cleanup`: removes a branch's upload and
 * output directories, optionally only those older than a cutoff. It walks
 * only DATA/uploads/{branch}/users/{user}/{upload} and
 * DATA/outputs/{branch}/{assembly}, never following symbolic links. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pipeline_internal.h"
#include "proto/assembly.h"
#include "proto/parse.h"

/* Removes the entries `depth` levels below dir whose last change is before
 * cutoff (0 = all); counts them in *removed. */
static void sweep(const char *dir, int depth, time_t cutoff, size_t *removed)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4200];
        struct stat st;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path) ||
            lstat(path, &st) != 0)
            continue;
        if (depth > 1) {
            if (S_ISDIR(st.st_mode))
                sweep(path, depth - 1, cutoff, removed);
            continue;
        }
        if (cutoff != 0 && st.st_mtime >= cutoff)
            continue;
        if (S_ISDIR(st.st_mode))
            bg_pl_rmtree(path);
        else
            remove(path);
        (*removed)++;
    }
    closedir(d);
}

bg_err bg_pipeline_cleanup(const char *data_dir, const char *branch, long long older_than_s,
                           size_t *removed)
{
    if (!bg_str_is_ident(branch, strlen(branch), BG_BRANCH_NAME_MAX, "-_.") ||
        strcmp(branch, ".") == 0 || strcmp(branch, "..") == 0)
        return BG_EINVAL;
    time_t cutoff = older_than_s > 0 ? time(NULL) - (time_t)older_than_s : 0;
    char dir[4200];
    *removed = 0;
    snprintf(dir, sizeof(dir), "%s/uploads/%s/users", data_dir, branch);
    sweep(dir, 2, cutoff, removed); /* users/{user}/{upload} */
    snprintf(dir, sizeof(dir), "%s/outputs/%s", data_dir, branch);
    sweep(dir, 1, cutoff, removed);
    return BG_OK;
}
