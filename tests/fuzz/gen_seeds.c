// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpora of fuzz_receive and fuzz_uapi: real datagrams captured between two
 * in-process devices with fuzz_receive's fixed keys, plus synthesized data messages for its
 * fixed sessions. Each receive seed is then run through the fuzz target once to check that it
 * reaches the code it was made for.
 *
 * Build with -Isrc -Itests/unit and every .c file of src/wg and src/util, link -lcrypto
 * -lsodium -lpthread, and run from the top directory: gen_seeds tests/fuzz/corpus
 */
#include <sys/stat.h>
#include "harness.h"
#include "fuzz_receive.c"

static const char *outdir;

static void write_seed(const char *sub, const char *name, uint8_t mode, const void *msg, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (!f || (mode != 0xff && fputc(mode, f) == EOF) || fwrite(msg, 1, len, f) != len ||
	    fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void write_text(const char *name, const char *text)
{
	write_seed("uapi", name, 0xff, text, strlen(text));
}

/* Runs a seed through the fuzz target and reports what it did; want_rx -1: either way. */
static void check(const char *name, uint8_t mode, const void *msg, size_t len, int want_rx,
		  bool want_session)
{
	uint8_t in[2048];
	uint64_t rx = atomic_load(&peer->rx_bytes), inv = atomic_load(&dev->dropped_invalid);
	bool rx_grew, session;

	in[0] = mode;
	memcpy(in + 1, msg, len);
	LLVMFuzzerTestOneInput(in, len + 1);
	rx_grew = atomic_load(&peer->rx_bytes) > rx;
	/* A consumed initiation replaces the fixed "next" with a real one. */
	session = peer->keypairs.next && peer->keypairs.next->entry.index != FUZZ_IDX_NEXT;
	printf("%-24s rx %s, new session %s, dropped_invalid +%llu\n", name, rx_grew ? "yes" : "no",
	       session ? "yes" : "no",
	       (unsigned long long)(atomic_load(&dev->dropped_invalid) - inv));
	if ((want_rx >= 0 && rx_grew != want_rx) || session != want_session) {
		fprintf(stderr, "%s: does not do what it should\n", name);
		exit(1);
	}
}

/* A data message for fuzz_receive's fixed sessions: header, plaintext, room for the tag. */
static size_t data_seed(uint8_t *m, uint32_t idx, uint64_t counter, const uint8_t *pkt, size_t plen)
{
	uint32_t t = htole32(WG_MSG_DATA);

	idx = htole32(idx);
	counter = htole64(counter);
	memcpy(m, &t, 4);
	memcpy(m + 4, &idx, 4);
	memcpy(m + 8, &counter, 8);
	memcpy(m + 16, pkt, plen);
	memset(m + 16 + plen, 0, WG_AUTHTAG_LEN);
	return 16 + plen + WG_AUTHTAG_LEN;
}

static size_t ipv6_packet(uint8_t *p, uint8_t proto, size_t payload)
{
	memset(p, 0, 40 + payload);
	p[0] = 0x60;
	p[4] = (uint8_t)(payload >> 8);
	p[5] = (uint8_t)payload;
	p[6] = proto;
	p[7] = 64;
	inet_pton(AF_INET6, "fd00::2", p + 8);
	inet_pton(AF_INET6, "fd00::1", p + 24);
	return 40 + payload;
}

/* An IPv4 TCP segment from 10.0.0.2 with valid checksums, as GRO wants to merge. */
static size_t tcp4_packet(uint8_t *p, uint32_t seq, size_t payload)
{
	size_t len = 20 + 20 + payload;
	uint32_t sum = 0;

	memset(p, 0, len);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[6] = 0x40; /* DF */
	p[8] = 64;
	p[9] = IPPROTO_TCP;
	inet_pton(AF_INET, "10.0.0.2", p + 12);
	inet_pton(AF_INET, "10.0.0.1", p + 16);
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	p[10] = (uint8_t)(~sum >> 8);
	p[11] = (uint8_t)~sum;
	p[20] = 0x30;
	p[21] = 0x39;
	p[22] = 0x00;
	p[23] = 0x50;
	p[24] = (uint8_t)(seq >> 24);
	p[25] = (uint8_t)(seq >> 16);
	p[26] = (uint8_t)(seq >> 8);
	p[27] = (uint8_t)seq;
	p[32] = 0x50; /* data offset: 5 words */
	p[33] = 0x18; /* PSH, ACK */
	p[34] = 0xff;
	memset(p + 40, 'x', payload);
	sum = 0;
	for (size_t i = 12; i < 20; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	sum += IPPROTO_TCP + (uint32_t)(len - 20);
	for (size_t i = 20; i < len; i += 2)
		sum += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	p[36] = (uint8_t)(~sum >> 8);
	p[37] = (uint8_t)~sum;
	return len;
}

static void receive_seeds(void)
{
	uint8_t rpriv[WG_KEY_LEN], ipriv[WG_KEY_LEN], m[2048], pkt[1500];
	struct hdev r, i;
	struct h_datagram *d, init, resp, cookie, ka;
	struct wg_endpoint from;
	size_t n;

	/* The real thing, with the fuzz target's keys: I initiates to R. */
	fuzz_responder_key(rpriv);
	fuzz_initiator_key(ipriv);
	if (h_dev_new_with_key(&r, "seed-r", rpriv) || h_dev_new_with_key(&i, "seed-i", ipriv) ||
	    h_add_peer(&r, &i, "10.0.0.2/32", "") || h_add_peer(&i, &r, "10.0.0.1/32", ""))
		abort();
	h_handshake(&i, &r);
	init = *h_log_find(&r, WG_MSG_HANDSHAKE_INITIATION, 0);
	ka = *h_log_find(&r, WG_MSG_DATA, 0);
	/* R initiates to I: I's response is what R receives. */
	h_initiate(&r, &i);
	h_pump(&r, &i);
	d = h_log_find(&r, WG_MSG_HANDSHAKE_RESPONSE, 0);
	if (!d)
		abort();
	resp = *d;
	/* I under load answers R's next initiation with a cookie. */
	pthread_mutex_lock(&i.dev->hs_lock);
	i.dev->hs_count = WG_UNDER_LOAD_THRESHOLD;
	pthread_mutex_unlock(&i.dev->hs_lock);
	h_initiate(&r, &i);
	n = (size_t)h_recv(&i, m, sizeof(m), &from, 1000);
	h_deliver(&i, m, n, &r.addr);
	n = (size_t)h_recv(&r, cookie.msg, sizeof(cookie.msg), &cookie.src, 1000);
	if (n != sizeof(struct wg_message_handshake_cookie))
		abort();
	cookie.len = n;
	pthread_mutex_lock(&i.dev->hs_lock);
	i.dev->hs_count = 0;
	pthread_mutex_unlock(&i.dev->hs_lock);

	write_seed("receive", "initiation", 0x00, init.msg, init.len);
	write_seed("receive", "initiation_remac", MODE_REMAC, init.msg, init.len);
	write_seed("receive", "initiation_under_load", MODE_REMAC | MODE_UNDER_LOAD, init.msg,
		   init.len);
	write_seed("receive", "initiation_twice", MODE_REMAC | MODE_TWICE, init.msg, init.len);
	write_seed("receive", "response", MODE_REMAC | MODE_INITIATE, resp.msg, resp.len);
	write_seed("receive", "response_raw", 0x00, resp.msg, resp.len);
	write_seed("receive", "cookie", MODE_INITIATE, cookie.msg, cookie.len);
	write_seed("receive", "keepalive_captured", 0x00, ka.msg, ka.len);

	check("initiation", 0x00, init.msg, init.len, -1, true);
	check("initiation_under_load", MODE_REMAC | MODE_UNDER_LOAD, init.msg, init.len, false,
	      false);
	check("response", MODE_REMAC | MODE_INITIATE, resp.msg, resp.len, false, false);
	check("cookie", MODE_INITIATE, cookie.msg, cookie.len, false, false);

	/* Synthesized data for the fixed sessions, sealed by the target (MODE_SEAL). */
	n = data_seed(m, FUZZ_IDX_CURRENT, 0, NULL, 0);
	write_seed("receive", "keepalive", MODE_SEAL, m, n);
	check("keepalive", MODE_SEAL, m, n, true, false);
	write_seed("receive", "keepalive_replayed", MODE_SEAL | MODE_TWICE, m, n);
	n = data_seed(m, FUZZ_IDX_NEXT, 7, NULL, 0);
	write_seed("receive", "keepalive_confirms_next", MODE_SEAL, m, n);
	check("keepalive_confirms_next", MODE_SEAL, m, n, true, false);
	n = data_seed(m, FUZZ_IDX_CURRENT, 1, pkt, h_ipv4_packet(pkt, "10.0.0.2", "10.0.0.1"));
	write_seed("receive", "data_udp4", MODE_SEAL, m, n);
	check("data_udp4", MODE_SEAL, m, n, true, false);
	n = data_seed(m, FUZZ_IDX_CURRENT, 2, pkt, h_ipv4_packet(pkt, "10.0.0.9", "10.0.0.1"));
	write_seed("receive", "data_wrong_source", MODE_SEAL, m, n);
	n = data_seed(m, FUZZ_IDX_CURRENT, 3, pkt, tcp4_packet(pkt, 1000, 1000));
	write_seed("receive", "data_tcp4", MODE_SEAL, m, n);
	check("data_tcp4", MODE_SEAL, m, n, true, false);
	n = data_seed(m, FUZZ_IDX_CURRENT, 4, pkt, ipv6_packet(pkt, IPPROTO_UDP, 16));
	write_seed("receive", "data_udp6", MODE_SEAL, m, n);
	check("data_udp6", MODE_SEAL, m, n, true, false);
	n = data_seed(m, FUZZ_IDX_CURRENT, 5, pkt, ipv6_packet(pkt, IPPROTO_TCP, 40));
	pkt[40 + 12] = 0x50;
	memcpy(m + 16, pkt, 80);
	write_seed("receive", "data_tcp6", MODE_SEAL, m, n);
	n = data_seed(m, FUZZ_IDX_CURRENT, 6, pkt, h_ipv4_packet(pkt, "10.0.0.2", "10.0.0.1"));
	write_seed("receive", "data_unsealed", 0x00, m, n);

	write_seed("receive", "empty", 0x00, "", 0);
	write_seed("receive", "type_only", 0x00, "\x01\x00\x00\x00", 4);

	h_dev_free(&r);
	h_dev_free(&i);
}

static void uapi_seeds(void)
{
	write_text("get", "get=1\n\n");
	write_text("set_empty", "set=1\n\n");
	write_text(
		"set_full",
		"set=1\n"
		"private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a\n"
		"fwmark=0\n"
		"replace_peers=true\n"
		"public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
		"preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52\n"
		"replace_allowed_ips=true\n"
		"allowed_ip=192.168.4.4/32\n"
		"endpoint=[abcd:23::33%2]:51820\n"
		"public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376\n"
		"update_only=true\n"
		"endpoint=182.122.22.19:3233\n"
		"persistent_keepalive_interval=111\n"
		"replace_allowed_ips=true\n"
		"allowed_ip=192.168.4.6/32\n"
		"public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58\n"
		"endpoint=5.152.198.39:51820\n"
		"replace_allowed_ips=true\n"
		"allowed_ip=192.168.4.10/32\n"
		"allowed_ip=192.168.4.11/32\n"
		"public_key=e818b58db5274087fcc1be5dc728cf53d3b5726b4cef6b9bab8f8f8c2452c25c\n"
		"remove=true\n\n");
	write_text("set_v6_ips",
		   "set=1\n"
		   "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
		   "allowed_ip=::/0\nallowed_ip=fd00:1:2::/48\nallowed_ip=0.0.0.0/0\n"
		   "protocol_version=1\n\n");
	write_text("set_then_get",
		   "set=1\n"
		   "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
		   "allowed_ip=10.0.0.0/8\n\n");
	write_text("bad_cidr",
		   "set=1\n"
		   "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
		   "allowed_ip=10.0.0.0/33\n\n");
	write_text("bad_endpoint",
		   "set=1\n"
		   "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
		   "endpoint=[::1]\n\n");
	write_text("bad_version",
		   "set=1\n"
		   "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
		   "protocol_version=2\n\n");
	write_text("bad_key", "set=1\nprivate_key=zz\n\n");
	write_text("no_equals", "set=1\nlisten_port\n\n");
	write_text("no_blank_line", "set=1\nfwmark=7\n");
	write_text("garbage", "hello\n\n");
}

int main(int argc, char **argv)
{
	outdir = argc > 1 ? argv[1] : "tests/fuzz/corpus";
	fuzz_setup();
	receive_seeds();
	uapi_seeds();
	device_free(dev);
	return 0;
}
