/* SPDX-License-Identifier: MIT */
/* The device's UDP sockets: IPv4 and IPv6 on one port, with GSO/GRO where the kernel has it. */
#ifndef WICE_WG_UDP_H
#define WICE_WG_UDP_H

#include <stdbool.h>
#include <stdint.h>

/* Opens both sockets on port (0: pick one free for both). ret_port gets the port. Either fd
 * may come back -1 when its family is unavailable, not both. */
int udp_open(uint16_t port, uint32_t fwmark, int *ret_fd4, int *ret_fd6, uint16_t *ret_port,
	     bool *ret_gro);
int udp_set_fwmark(int fd, uint32_t fwmark);

#endif
