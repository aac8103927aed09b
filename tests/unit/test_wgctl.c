// SPDX-License-Identifier: MIT
/*
 * wgctl: the UAPI parser on canned responses, the UAPI client against a fake implementation on
 * a unix socket in a temporary directory (test_wgctl_uapi.c), the kernel dump parser on dumps
 * built here with libmnl (including the kernel's split of one device over several messages),
 * the SET message, and the kernel backend's clean refusal where the module is missing
 * (test_wgctl_kernel.c). This file: the helpers they share, and main.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "daemon/wgctl.h"
#include "test_wgctl.h"

void hex_key(uint8_t key[WGCTL_KEY_LEN], const char *hex)
{
	for (int i = 0; i < WGCTL_KEY_LEN; i++) {
		unsigned int b;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
		key[i] = (uint8_t)b;
	}
}

void assert_key(const uint8_t key[WGCTL_KEY_LEN], const char *hex)
{
	uint8_t want[WGCTL_KEY_LEN];

	hex_key(want, hex);
	assert_memory_equal(key, want, WGCTL_KEY_LEN);
}

void assert_ep4(const struct sockaddr_storage *ss, const char *addr, uint16_t port)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
	struct in_addr want;

	assert_int_equal(ss->ss_family, AF_INET);
	assert_int_equal(inet_pton(AF_INET, addr, &want), 1);
	assert_memory_equal(&in->sin_addr, &want, sizeof(want));
	assert_int_equal(ntohs(in->sin_port), port);
}

void assert_ep6(const struct sockaddr_storage *ss, const char *addr, uint16_t port, uint32_t scope)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	struct in6_addr want;

	assert_int_equal(ss->ss_family, AF_INET6);
	assert_int_equal(inet_pton(AF_INET6, addr, &want), 1);
	assert_memory_equal(&in6->sin6_addr, &want, sizeof(want));
	assert_int_equal(ntohs(in6->sin6_port), port);
	assert_int_equal(in6->sin6_scope_id, scope);
}

void assert_aip(const struct wgctl_allowedip *aip, const char *addr, uint8_t cidr)
{
	uint8_t want[16];
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	assert_int_equal(aip->family, family);
	assert_int_equal(inet_pton(family, addr, want), 1);
	assert_memory_equal(&aip->ip6, want, family == AF_INET ? 4 : 16);
	assert_int_equal(aip->cidr, cidr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uapi_parse_full),
		cmocka_unit_test(test_uapi_parse_no_key_no_peers),
		cmocka_unit_test(test_uapi_parse_multiple_peers),
		cmocka_unit_test(test_uapi_endpoints),
		cmocka_unit_test(test_uapi_parse_malformed),
		cmocka_unit_test(test_uapi_parse_nul_and_long_lines),
		cmocka_unit_test(test_uapi_parse_limits),
		cmocka_unit_test(test_uapi_format),
		cmocka_unit_test(test_ifname_valid),
		cmocka_unit_test(test_names_sorted_unique),
		cmocka_unit_test_setup_teardown(test_uapi_client, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_uapi_timeout, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_uapi_stale_and_plain_files, fake_setup,
						fake_teardown),
		cmocka_unit_test(test_kernel_parse_split_dump),
		cmocka_unit_test(test_kernel_parse_malformed),
		cmocka_unit_test(test_kernel_parse_links),
		cmocka_unit_test(test_kernel_build_set_endpoint),
		cmocka_unit_test(test_kernel_without_module),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
