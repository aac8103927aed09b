// SPDX-License-Identifier: MIT
/*
 * Shared by test_wgctl.c (helpers, main), test_wgctl_uapi.c (the UAPI parser and client) and
 * test_wgctl_kernel.c (the generic netlink dump parser, the SET message, no module): one
 * test program, test_wgctl.
 */
#ifndef WICE_TEST_WGCTL_H
#define WICE_TEST_WGCTL_H

#include <stdint.h>
#include <sys/socket.h>
#include "daemon/wgctl.h"

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

/* RFC 7748, section 6.1: Alice's private key and its public key; Bob's public key. */
#define PRIV_HEX  "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define PUB_HEX	  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define PEER1_HEX "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define PEER2_HEX "0101010101010101010101010101010101010101010101010101010101010101"
#define PEER3_HEX "0202020202020202020202020202020202020202020202020202020202020202"
#define PSK_HEX	  "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"

void hex_key(uint8_t key[WGCTL_KEY_LEN], const char *hex);
void assert_key(const uint8_t key[WGCTL_KEY_LEN], const char *hex);
void assert_ep4(const struct sockaddr_storage *ss, const char *addr, uint16_t port);
void assert_ep6(const struct sockaddr_storage *ss, const char *addr, uint16_t port, uint32_t scope);
void assert_aip(const struct wgctl_allowedip *aip, const char *addr, uint8_t cidr);

/* test_wgctl_uapi.c */
void test_uapi_parse_full(void **state);
void test_uapi_parse_no_key_no_peers(void **state);
void test_uapi_parse_multiple_peers(void **state);
void test_uapi_endpoints(void **state);
void test_uapi_parse_malformed(void **state);
void test_uapi_parse_nul_and_long_lines(void **state);
void test_uapi_parse_limits(void **state);
void test_uapi_format(void **state);
void test_ifname_valid(void **state);
void test_names_sorted_unique(void **state);
void test_uapi_client(void **state);
void test_uapi_timeout(void **state);
void test_uapi_stale_and_plain_files(void **state);
int fake_setup(void **state);
int fake_teardown(void **state);

/* test_wgctl_kernel.c */
void test_kernel_parse_split_dump(void **state);
void test_kernel_parse_malformed(void **state);
void test_kernel_parse_links(void **state);
void test_kernel_build_set_endpoint(void **state);
void test_kernel_without_module(void **state);

#endif
