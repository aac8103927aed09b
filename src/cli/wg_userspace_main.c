/* SPDX-License-Identifier: MIT */
/*
 * wice-wg-userspace IFACE: the userspace WireGuard alone, for wg-quick
 * (WG_QUICK_USERSPACE_IMPLEMENTATION must name one command) and for hosts that want only the
 * interface. Same code as `wice wg-userspace`, linked without the signaling and daemon
 * libraries, so the process maps nothing it does not use.
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return cmd_wg_userspace(argc, argv);
}
