/* gateway/main.c — the only place that wires modules together. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "gateway/cli.h"
#include "proto/log.h"
#include "proto/sig.h"

int main(int argc, char **argv)
{
    if (bg_sig_init() != BG_OK) {
        fputs("branchgate: cannot initialise libsodium\n", stderr);
        return 1;
    }
    const char *cmd = argc > 1 ? argv[1] : "help";
    if (strcmp(cmd, "init") == 0)
        return bg_cli_init(argc - 2, argv + 2);
    if (strcmp(cmd, "serve") == 0)
        return bg_cli_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "cleanup") == 0)
        return bg_cli_cleanup(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return bg_cli_version();
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return bg_cli_help(argc > 2 ? argv[2] : NULL);
    return bg_cli_dispatch(cmd, argc - 2, argv + 2);
}
