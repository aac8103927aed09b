/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
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

/* Runs `nft -f -` with script on its standard input. 0, or -EIO (logged). */
static int nft_run(const char *script)
{
	size_t len = strlen(script), off = 0;
	int in[2], status;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int r = -errno;

		close(in[0]);
		close(in[1]);
		return r;
	}
	if (pid == 0) {
		if (dup2(in[0], STDIN_FILENO) < 0)
			_exit(127);
		execlp("nft", "nft", "-f", "-", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	while (off < len) {
		ssize_t w = write(in[1], script + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(in[1]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		log_warn("nft failed (status %d) on:\n%s", status, script);
		return -EIO;
	}
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
	r = nft_run(s->str);
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
	r = nft_run(s->str);
	g_string_free(s, TRUE);
	return r;
}
