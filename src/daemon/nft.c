/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <nftables/libnftables.h>
#include "daemon/nft.h"
#include "util/log.h"

#define NFT_TABLE "inet wice"

/* A peer id is IFNAME_HEX8: the interface's part, then '_' and 8 hex digits. */
#define NFT_KEY_SUFFIX_LEN 9

/* The interface's part of its peers' ids (ifname, chain-name-safe). Its length. */
static size_t id_prefix(char ret[static NFT_ID_MAX], const char *ifname)
{
	size_t n = 0;

	for (const char *c = ifname; *c && n < NFT_ID_MAX - NFT_KEY_SUFFIX_LEN - 1; c++)
		ret[n++] = g_ascii_isalnum(*c) ? *c : '_';
	ret[n] = '\0';
	return n;
}

void nft_peer_id(char ret[static NFT_ID_MAX], const char *ifname, const uint8_t *peer_key)
{
	size_t n = id_prefix(ret, ifname);

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
			       "add chain " NFT_TABLE " out_%s { type route hook output "
			       "priority raw; }\n"
			       "flush chain " NFT_TABLE " pre_%s\n"
			       "flush chain " NFT_TABLE " out_%s\n",
			       id, id, id, id);
}

int nft_direct_set(const char *id, const struct sockaddr_storage *local,
		   const struct sockaddr_storage *remote, uint16_t wg_port)
{
	char la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN];
	char ldst[INET6_ADDRSTRLEN + 16] = "", lsrc[INET6_ADDRSTRLEN + 16] = "";
	char lset[INET6_ADDRSTRLEN + 20] = "";
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
		snprintf(lset, sizeof(lset), " %s saddr set %s", ip, la);
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
		"udp sport set %u%s\n",
		id, ip, ra, ldst, rp, lp, id, ip, ra, ldst, rp, lp, wg_port, id, ip, ra, lsrc, rp,
		lp, id, ip, ra, rp, wg_port, lp, lset);
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

/* ---- what an earlier daemon left ---- */

/* The peer id in a chain name pre_ID or out_ID of one of the interface's peers, else NULL. */
static const char *chain_id(const char *name, const char *prefix, size_t plen)
{
	const char *id;

	if (strncmp(name, "pre_", 4) && strncmp(name, "out_", 4))
		return NULL;
	id = name + 4;
	if (strlen(id) != plen + NFT_KEY_SUFFIX_LEN || strncmp(id, prefix, plen) || id[plen] != '_')
		return NULL;
	for (size_t i = plen + 1; i < plen + NFT_KEY_SUFFIX_LEN; i++) {
		if (!g_ascii_isxdigit(id[i]))
			return NULL;
	}
	return id;
}

static JsonObject *member_object(JsonObject *o, const char *name)
{
	JsonNode *n = o ? json_object_get_member(o, name) : NULL;

	return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static const char *member_string(JsonObject *o, const char *name)
{
	JsonNode *n = o ? json_object_get_member(o, name) : NULL;

	return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
		       ? json_node_get_string(n)
		       : NULL;
}

/* A chain or rule of table inet wice, else NULL. */
static JsonObject *wice_object(JsonNode *item, const char *kind)
{
	JsonObject *o = JSON_NODE_HOLDS_OBJECT(item)
				? member_object(json_node_get_object(item), kind)
				: NULL;

	if (g_strcmp0(member_string(o, "family"), "inet") ||
	    g_strcmp0(member_string(o, "table"), "wice"))
		return NULL;
	return o;
}

/* The peer's address and port in a prerouting rule: "ip[6] saddr R ... udp sport rp ...". */
static bool rule_remote(JsonObject *rule, struct sockaddr_storage *ret)
{
	JsonNode *n = json_object_get_member(rule, "expr");
	JsonArray *expr = n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
	const char *addr = NULL;
	gint64 port = -1;

	for (guint i = 0; expr && i < json_array_get_length(expr); i++) {
		JsonNode *e = json_array_get_element(expr, i);
		JsonObject *m = JSON_NODE_HOLDS_OBJECT(e)
					? member_object(json_node_get_object(e), "match")
					: NULL;
		JsonObject *pl = member_object(member_object(m, "left"), "payload");
		const char *proto = member_string(pl, "protocol"),
			   *field = member_string(pl, "field");
		JsonNode *right = m ? json_object_get_member(m, "right") : NULL;

		if (!proto || !field || !right || !JSON_NODE_HOLDS_VALUE(right) ||
		    g_strcmp0(member_string(m, "op"), "=="))
			continue;
		if ((!strcmp(proto, "ip") || !strcmp(proto, "ip6")) && !strcmp(field, "saddr") &&
		    json_node_get_value_type(right) == G_TYPE_STRING)
			addr = json_node_get_string(right);
		else if (!strcmp(proto, "udp") && !strcmp(field, "sport") &&
			 json_node_get_value_type(right) == G_TYPE_INT64)
			port = json_node_get_int(right);
	}
	if (!addr || port <= 0 || port > UINT16_MAX)
		return false;
	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)ret)->sin_addr) == 1) {
		ret->ss_family = AF_INET;
		((struct sockaddr_in *)ret)->sin_port = htons((uint16_t)port);
		return true;
	}
	if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)ret)->sin6_addr) == 1) {
		ret->ss_family = AF_INET6;
		((struct sockaddr_in6 *)ret)->sin6_port = htons((uint16_t)port);
		return true;
	}
	return false;
}

/*
 * From nft's JSON listing: a delete command per chain of the interface's peers into del, and
 * per prerouting chain the peer id and the peer's address (from its rules) into stale.
 */
static int sweep_parse(const char *json, const char *ifname, GString *del, GArray *stale)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	char prefix[NFT_ID_MAX];
	size_t plen = id_prefix(prefix, ifname);
	JsonObject *root;
	JsonArray *items;
	JsonNode *n;

	if (!json_parser_load_from_data(parser, json, -1, NULL))
		return -EBADMSG;
	n = json_parser_get_root(parser);
	root = n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
	n = root ? json_object_get_member(root, "nftables") : NULL;
	if (!n || !JSON_NODE_HOLDS_ARRAY(n))
		return -EBADMSG;
	items = json_node_get_array(n);
	for (guint i = 0; i < json_array_get_length(items); i++) {
		JsonObject *c = wice_object(json_array_get_element(items, i), "chain");
		const char *name = member_string(c, "name"), *id;
		struct nft_stale st = {0};

		if (!name || !(id = chain_id(name, prefix, plen)))
			continue;
		g_string_append_printf(del, "delete chain " NFT_TABLE " %s\n", name);
		if (name[0] != 'p')
			continue;
		g_strlcpy(st.id, id, sizeof(st.id));
		g_array_append_val(stale, st);
	}
	/* Then the peers' addresses: the first prerouting rule that names one. */
	for (guint i = 0; i < json_array_get_length(items); i++) {
		JsonObject *r = wice_object(json_array_get_element(items, i), "rule");
		const char *chain = member_string(r, "chain");

		if (!chain || strncmp(chain, "pre_", 4))
			continue;
		for (guint j = 0; j < stale->len; j++) {
			struct nft_stale *st = &g_array_index(stale, struct nft_stale, j);

			if (st->remote.ss_family == AF_UNSPEC && !strcmp(st->id, chain + 4))
				rule_remote(r, &st->remote);
		}
	}
	return 0;
}

int nft_sweep(const char *ifname, struct nft_stale **ret, size_t *ret_n)
{
	g_autoptr(GString) del = g_string_new(NULL);
	GArray *stale = g_array_new(FALSE, TRUE, sizeof(struct nft_stale));
	const char *out;
	int r;

	r = nft_run("listing the inet tables for", ifname, "list ruleset inet", true, &out);
	if (r == 0) {
		r = sweep_parse(out, ifname, del, stale);
		if (r < 0)
			log_warn("nftables: %s: unreadable JSON listing: leftover chains stay",
				 ifname);
	}
	if (r == 0 && del->len) {
		r = nft_run("deleting the chains an earlier daemon left for", ifname, del->str,
			    false, NULL);
		if (r == 0)
			log_info("%s: deleted the direct path's chains of %u peer(s) an earlier "
				 "daemon left in table " NFT_TABLE,
				 ifname, stale->len);
	}
	if (r < 0) {
		g_array_free(stale, TRUE);
		return r;
	}
	*ret_n = stale->len;
	*ret = (struct nft_stale *)(void *)g_array_free(stale, FALSE);
	return 0;
}

bool nft_stale_find(const struct nft_stale *stale, size_t n, const char *id,
		    const struct sockaddr_storage *ep)
{
	for (size_t i = 0; i < n; i++) {
		const struct sockaddr_storage *r = &stale[i].remote;

		if (strcmp(stale[i].id, id) || r->ss_family != ep->ss_family)
			continue;
		if (r->ss_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)r, *b = (const void *)ep;

			if (a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr)
				return true;
		} else if (r->ss_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)r, *b = (const void *)ep;

			if (a->sin6_port == b->sin6_port &&
			    !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)))
				return true;
		}
	}
	return false;
}
