/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

int cli_wants_help(int argc, char **argv, const char *text)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(text, stdout);
			return 1;
		}
	return 0;
}
