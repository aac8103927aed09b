/* SPDX-License-Identifier: MIT */
/* wice: one binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

static const struct cli_command commands[] = {
	{"wg-userspace", "run a userspace WireGuard interface", cmd_wg_userspace},
	{"daemon", "connect this host's WireGuard peers through NATs with ICE", cmd_daemon},
	{"signal", "run the signaling server (gRPC and WebSocket)", cmd_signal},
	{"status", "show interfaces, peers and their ICE paths (--json)", cmd_status},
	{"genkey", "print a new private key (base64), like wg genkey", cmd_genkey},
	{"genpsk", "print a new pre-shared key (base64), like wg genpsk", cmd_genpsk},
	{"pubkey", "read a private key on stdin, print its public key", cmd_pubkey},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: wice <command> [options]\n\n"
		   "wice connects WireGuard peers directly through NATs and firewalls.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'wice <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "wice: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 1;
}
