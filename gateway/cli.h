/*
 * gateway/cli.h — the branchgate command line: init, serve, version, help.
 * Each returns the process exit code (0 ok, 1 failure, 2 usage). Main
 * thread only.
 */
#ifndef BG_GATEWAY_CLI_H
#define BG_GATEWAY_CLI_H

int bg_cli_init(int argc, char **argv);
int bg_cli_serve(int argc, char **argv);
/* `cleanup --branch B [--older-than D] [--data DIR]`: exit 0, 1 (not a
 * data dir), 2 (usage). */
int bg_cli_cleanup(int argc, char **argv);
int bg_cli_version(void);
int bg_cli_help(const char *topic);

#endif
