/* gateway/cli_backup.c — `branchgate backup --data DIR --to FILE`: a
 * local command (no server call) that copies a branch's database while
 * the branch runs, through the registry's online backup
 * (bg_registry_backup), and says which other files a restore needs
 * (docs/operations.md, "Backup and restore"; docs/cli.md). */
#include "gateway/cli_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node/config.h"
#include "node/node.h"
#include "registry/registry.h"

static const char backup_help[] =
    "usage: branchgate backup --to FILE [--data DIR] [--json]\n"
    "\n"
    "  copies DIR/branchgate.db to FILE with SQLite's online backup, safe while the branch\n"
    "  runs: one consistent snapshot, checked with PRAGMA integrity_check, written to\n"
    "  FILE.part (mode 0600) and renamed to FILE. A restore also needs master.key,\n"
    "  signing.key, signing.pub and branchgate.json of DIR (and uploads/ and outputs/ for\n"
    "  the media files); see docs/operations.md, \"Backup and restore\".\n"
    "\n"
    "  --to FILE    the copy (replaced when it exists)\n"
    "  --data DIR   the branch's data directory (default: $BRANCHGATE_DATA, else\n"
    "               ./branchgate-data)\n"
    "  --json       print {\"database\",\"backup\",\"bytes\"} on success\n"
    "  exit codes: 0 ok, 1 failure (not a data directory, copy or check failed), 2 usage\n"
    "\n"
    "example:\n"
    "  branchgate backup --data ./hq --to /backup/hq-$(date +%F).db\n";

static int backup(bg_cli *unused, const bg_cli_args *a)
{
    (void)unused;
    const char *to = bg_cli_val(a, "--to");
    if (to == NULL || to[0] == '\0')
        return bg_cli_usage(a, "--to FILE is required");
    const char *dir = bg_cli_val(a, "--data");
    if (dir == NULL)
        dir = getenv("BRANCHGATE_DATA");
    if (dir == NULL || dir[0] == '\0')
        dir = BG_DEFAULT_DATA_DIR;
    char db[4200], err[512];
    struct stat st;
    snprintf(db, sizeof(db), "%s/%s", dir, BG_DB_FILE);
    if (stat(db, &st) != 0) {
        fprintf(stderr, "branchgate backup: %s is not a branch data directory (no %s)\n", dir,
                BG_DB_FILE);
        return BG_CLI_FAIL;
    }
    if (bg_registry_backup(db, to, err, sizeof(err)) != BG_OK) {
        fprintf(stderr, "branchgate backup: %s\n", err);
        return BG_CLI_FAIL;
    }
    long long bytes = stat(to, &st) == 0 ? (long long)st.st_size : -1;
    if (bg_cli_flag(a, "--json")) {
        json_t *j =
            json_pack("{s:s, s:s, s:I}", "database", db, "backup", to, "bytes", (json_int_t)bytes);
        char *t = json_dumps(j, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
        json_decref(j);
    } else {
        printf("backed up %s to %s (%lld bytes, integrity ok)\n", db, to, bytes);
        printf("a restore also needs master.key, signing.key, signing.pub and branchgate.json "
               "of %s\n",
               dir);
    }
    return BG_CLI_OK;
}

int bg_cli_cmd_backup(int argc, char **argv)
{
    bg_cli_opt o[] = {BG_OPT_V("--to"), BG_OPT_V("--data"), BG_OPT_F("--json"), BG_OPT_F("--help")};
    return bg_cli_run(argc, argv, o, sizeof(o) / sizeof(o[0]), "backup", backup_help, 0, 0, false,
                      backup);
}

const char *bg_cli_backup_help(void)
{
    return backup_help;
}
