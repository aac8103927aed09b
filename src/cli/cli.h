/* SPDX-License-Identifier: MIT */
#ifndef WICE_CLI_H
#define WICE_CLI_H

struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

int cmd_genkey(int argc, char **argv);
int cmd_genpsk(int argc, char **argv);
int cmd_pubkey(int argc, char **argv);
int cmd_wg_userspace(int argc, char **argv);
int cmd_signal(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_daemon(int argc, char **argv);

/* True when argv holds -h or --help; prints usage then. */
int cli_wants_help(int argc, char **argv, const char *usage);

#endif
