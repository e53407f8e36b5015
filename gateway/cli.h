/*
 * gateway/cli.h — the branchgate command line: init, serve, cleanup,
 * version, help, and the client commands reached through
 * bg_cli_dispatch (docs/cli.md). Each returns the process exit code (0 ok,
 * 1 failure, 2 usage). Main thread only.
 */
#ifndef BG_GATEWAY_CLI_H
#define BG_GATEWAY_CLI_H

int bg_cli_init(int argc, char **argv);
int bg_cli_serve(int argc, char **argv);
/* `cleanup --branch B [--older-than D] [--data DIR]`: exit 0, 1 (not a
 * data dir), 2 (usage). */
int bg_cli_cleanup(int argc, char **argv);
int bg_cli_version(void);
/* Usage on stdout: the overview (topic NULL) or one command's help; 2
 * (message on stderr) for an unknown topic. */
int bg_cli_help(const char *topic);
/* Runs one of the other commands (branch, org, license, token, dlq,
 * status, assembly, backup) with the arguments after its name; an
 * unknown command is a usage error (2). */
int bg_cli_dispatch(const char *cmd, int argc, char **argv);

#endif
