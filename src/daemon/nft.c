/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <nftables/libnftables.h>
#include "daemon/nft.h"
#include "util/log.h"

#define NFT_TABLE "inet wice"

void nft_peer_id(char ret[static NFT_ID_MAX], const char *ifname, const uint8_t *peer_key)
{
	size_t n = 0;

	for (const char *c = ifname; *c && n < NFT_ID_MAX - 10; c++)
		ret[n++] = g_ascii_isalnum(*c) ? *c : '_';
	snprintf(ret + n, NFT_ID_MAX - n, "_%02x%02x%02x%02x", peer_key[0], peer_key[1],
		 peer_key[2], peer_key[3]);
}

/*
 * One libnftables context for the process, on the loop's thread only: made on first use, so
 * the rules cost no fork and exec of the CLI. Output and errors go to its buffers.
 */
static struct nft_ctx *nft;

static int nft_get(struct nft_ctx **ret)
{
	if (!nft) {
		nft = nft_ctx_new(NFT_CTX_DEFAULT);
		if (!nft)
			return -ENOMEM;
		if (nft_ctx_buffer_output(nft) < 0 || nft_ctx_buffer_error(nft) < 0) {
			nft_ctx_free(nft);
			nft = NULL;
			return -ENOMEM;
		}
	}
	*ret = nft;
	return 0;
}

void nft_close(void)
{
	if (nft)
		nft_ctx_free(nft);
	nft = NULL;
}

/*
 * nft's error text as one log line: its "Error: ..." lines. Not the command line it prints
 * under each with carets: from a buffer of several lines, libnftables 1.0.6 prints the first
 * line whichever failed; the script goes to the debug log instead.
 */
static void log_nft_error(const char *what, const char *id, const char *err, const char *script)
{
	g_auto(GStrv) lines = g_strsplit(err ? err : "", "\n", -1);
	g_autoptr(GString) msg = g_string_new(NULL);

	for (char **l = lines; *l; l++) {
		if (g_str_has_prefix(*l, "Error: ") || strstr(*l, ": Error: "))
			g_string_append_printf(msg, "%s%s", msg->len ? "; " : "", *l);
	}
	log_warn("nftables: %s %s: %s", what, id, msg->len ? msg->str : "failed (no error text)");
	log_debug("nftables: the commands were:\n%s", script);
}

/*
 * Runs script, one transaction: all of it or nothing. 0, or -EIO (logged with nft's error
 * text). With ret_output, the command's output (JSON when json), valid until the next call.
 */
static int nft_run(const char *what, const char *id, const char *script, bool json,
		   const char **ret_output)
{
	struct nft_ctx *ctx;
	unsigned int flags;
	int r;

	r = nft_get(&ctx);
	if (r < 0) {
		log_warn("nftables: %s %s: no libnftables context: %s", what, id, strerror(-r));
		return r;
	}
	flags = nft_ctx_output_get_flags(ctx);
	nft_ctx_output_set_flags(ctx, json ? flags | NFT_CTX_OUTPUT_JSON
					   : flags & ~(unsigned int)NFT_CTX_OUTPUT_JSON);
	r = nft_run_cmd_from_buffer(ctx, script);
	nft_ctx_output_set_flags(ctx, flags);
	/* Reading a buffer also empties it for the next command. */
	if (r != 0) {
		log_nft_error(what, id, nft_ctx_get_error_buffer(ctx), script);
		nft_ctx_get_output_buffer(ctx);
		return -EIO;
	}
	nft_ctx_get_error_buffer(ctx);
	if (ret_output)
		*ret_output = nft_ctx_get_output_buffer(ctx);
	else
		nft_ctx_get_output_buffer(ctx);
	return 0;
}

static void addr_str(const struct sockaddr_storage *ss, char *buf, size_t n, uint16_t *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, buf, (socklen_t)n);
		*port = ntohs(s->sin6_port);
	} else {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s->sin_addr, buf, (socklen_t)n);
		*port = ntohs(s->sin_port);
	}
}

static bool addr_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static void chains(GString *s, const char *id)
{
	g_string_append_printf(s,
			       "add table " NFT_TABLE "\n"
			       "add chain " NFT_TABLE " pre_%s { type filter hook prerouting "
			       "priority raw; }\n"
			       "add chain " NFT_TABLE " out_%s { type filter hook output "
			       "priority raw; }\n"
			       "flush chain " NFT_TABLE " pre_%s\n"
			       "flush chain " NFT_TABLE " out_%s\n",
			       id, id, id, id);
}

int nft_direct_set(const char *id, const struct sockaddr_storage *local,
		   const struct sockaddr_storage *remote, uint16_t wg_port)
{
	char la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN],
		ldst[INET6_ADDRSTRLEN + 16] = "", lsrc[INET6_ADDRSTRLEN + 16] = "";
	const char *ip = remote->ss_family == AF_INET6 ? "ip6" : "ip";
	uint16_t lp, rp;
	gint64 t0;
	GString *s;
	int r;

	if (local->ss_family != remote->ss_family || !wg_port)
		return -EINVAL;
	addr_str(local, la, sizeof(la), &lp);
	addr_str(remote, ra, sizeof(ra), &rp);
	if (!addr_any(local)) {
		snprintf(ldst, sizeof(ldst), "%s daddr %s ", ip, la);
		snprintf(lsrc, sizeof(lsrc), "%s saddr %s ", ip, la);
	}
	s = g_string_new(NULL);
	chains(s, id);
	g_string_append_printf(
		s,
		"add rule " NFT_TABLE " pre_%s %s saddr %s %sudp sport %u udp dport %u notrack\n"
		"add rule " NFT_TABLE " pre_%s %s saddr %s %sudp sport %u udp dport %u "
		"@th,96,32 != 0x2112a442 udp dport set %u\n"
		"add rule " NFT_TABLE " out_%s %s daddr %s %sudp dport %u udp sport %u notrack\n"
		"add rule " NFT_TABLE " out_%s %s daddr %s udp dport %u udp sport %u notrack "
		"udp sport set %u\n",
		id, ip, ra, ldst, rp, lp, id, ip, ra, ldst, rp, lp, wg_port, id, ip, ra, lsrc, rp,
		lp, id, ip, ra, rp, wg_port, lp);
	t0 = g_get_monotonic_time();
	r = nft_run("setting the direct path's rules for", id, s->str, false, NULL);
	if (r == 0)
		log_debug("nftables: rules for %s set in %" G_GINT64_FORMAT " us", id,
			  g_get_monotonic_time() - t0);
	g_string_free(s, TRUE);
	return r;
}

int nft_direct_clear(const char *id)
{
	GString *s = g_string_new(NULL);
	int r;

	chains(s, id);
	g_string_append_printf(s,
			       "delete chain " NFT_TABLE " pre_%s\n"
			       "delete chain " NFT_TABLE " out_%s\n",
			       id, id);
	r = nft_run("deleting the direct path's chains of", id, s->str, false, NULL);
	g_string_free(s, TRUE);
	return r;
}

