/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include "cli/cli.h"

int cmd_signal(int argc, char **argv)
{
	fprintf(stderr, "wice signal: not built yet\n");
	return 1;
}
