// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the UAPI parser: each input is one request to a persistent device
 * (no TUN), followed by a get so the printer sees whatever the set built. The answer must
 * always end in "errno=N\n\n". Peers and allowed IPs pile up across inputs; a replace_peers
 * bounds them.
 *
 * listen_port lines bind real UDP sockets: the target moves itself into a network namespace
 * of its own when it can (root), so it never takes a port from anything else; otherwise such
 * inputs are skipped.
 *
 * Build (tests/fuzz/run.sh does): clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc
 * tests/fuzz/fuzz_uapi.c with every .c file of src/wg and src/util, -lcrypto -lsodium
 * -lpthread; run as ./fuzz_uapi tests/fuzz/corpus/uapi
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "wg/device.h"
#include "wg/uapi.h"

#define FUZZ_MAX_PEERS	    256
#define FUZZ_MAX_ALLOWEDIPS 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct wg_device *dev;
static bool may_bind;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_max_level = LOG_LVL_ERROR;
	may_bind = unshare(CLONE_NEWNET) == 0;
	if (device_new("fuzz", -1, &dev))
		abort();
	return 0;
}

/* Sends req to the device; the answer must end with the errno line. */
static void request(const char *req, size_t len)
{
	char *resp = NULL, tail[32];
	size_t rlen = 0, tlen;
	FILE *out = open_memstream(&resp, &rlen);
	int r;

	if (!out)
		abort();
	r = uapi_request(dev, req, len, out);
	fclose(out);
	tlen = (size_t)snprintf(tail, sizeof(tail), "errno=%d\n\n", -r);
	if (r > 0 || rlen < tlen || memcmp(resp + rlen - tlen, tail, tlen))
		abort();
	free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char get[] = "get=1\n\n";
	static const char reset[] = "set=1\nreplace_peers=true\n\n";
	char *req;

	if (!may_bind && memmem(data, size, "listen_port", 11))
		return 0;
	/* An exact-size copy: ASan sees a read past the end. */
	req = malloc(size ? size : 1);
	if (!req)
		return 0;
	memcpy(req, data, size);
	request(req, size);
	free(req);
	request(get, sizeof(get) - 1);
	if (dev->n_peers > FUZZ_MAX_PEERS || dev->allowedips.count > FUZZ_MAX_ALLOWEDIPS)
		request(reset, sizeof(reset) - 1);
	return 0;
}
