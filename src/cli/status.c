/* SPDX-License-Identifier: MIT */
/* wice status [--json] [--socket PATH]: what the daemon is doing, asked on its control socket. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cli/cli.h"
#include "daemon/control.h"
#include "util/key.h"

static const char usage[] =
	"Usage: wice status [--json] [--socket PATH]\n\n"
	"Shows every interface the daemon manages and each peer's connection: ICE state,\n"
	"selected candidate pair, whether and why it is relayed, ICE restarts and recoveries,\n"
	"last handshake and traffic.\n\n"
	"  --json         print the daemon's JSON document as it is\n"
	"  --socket PATH  the daemon's control socket (default " CONTROL_SOCKET_DEFAULT ")\n"
	"  -h, --help     this text\n";

static void print_bytes(uint64_t n)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		printf("%llu B", (unsigned long long)n);
	else
		printf("%.2f %s", v, units[u]);
}

static void print_ago(int64_t when)
{
	int64_t ago = (int64_t)time(NULL) - when;

	if (!when) {
		printf("never");
		return;
	}
	if (ago < 0)
		ago = 0;
	if (ago >= 3600)
		printf("%lld h, ", (long long)(ago / 3600));
	if (ago >= 60)
		printf("%lld min, ", (long long)(ago % 3600 / 60));
	printf("%lld s ago", (long long)(ago % 60));
}

static void print_candidate(const struct control_candidate *c)
{
	bool v6 = strchr(c->address, ':') != NULL;

	printf("%s %s%s%s:%u/%s", c->type[0] ? c->type : "?", v6 ? "[" : "", c->address,
	       v6 ? "]" : "", c->port, c->transport[0] ? c->transport : "?");
}

/* Restarts, pair changes and recoveries: what the link went through to stay up. */
static void print_recovery(const struct control_peer *p)
{
	if (p->connected_since) {
		printf("  connected: ");
		print_ago(p->connected_since);
		printf("\n");
	}
	if (p->pair_selected) {
		printf("  pair selected: ");
		print_ago(p->pair_selected);
		printf(" (%u pair change%s)\n", p->pair_changes, p->pair_changes == 1 ? "" : "s");
	}
	printf("  ICE restarts: %u", p->ice_restarts);
	if (p->ice_restarts) {
		printf(", last ");
		print_ago(p->last_restart);
		if (p->last_restart_reason[0])
			printf(" (%s)", p->last_restart_reason);
	}
	printf("\n  recoveries: %u", p->recoveries);
	if (p->recoveries) {
		printf(", last ");
		print_ago(p->last_recovery);
		if (p->last_outage_ms)
			printf(" after %.1f s without traffic", (double)p->last_outage_ms / 1000);
	}
	printf("\n");
}

static void print_peer(const struct control_peer *p)
{
	char b64[WG_KEY_B64_LEN + 1], ep[CONTROL_ENDPOINT_LEN];

	key_to_base64(b64, p->public_key);
	printf("\npeer: %s\n", b64);
	printf("  state: %s\n", p->state[0] ? p->state : "unknown");
	if (control_endpoint_format(ep, &p->endpoint) > 0)
		printf("  endpoint: %s\n", ep);
	if (p->has_selected_pair) {
		printf("  selected pair: ");
		print_candidate(&p->local);
		printf(" -> ");
		print_candidate(&p->remote);
		printf("\n");
	}
	if (p->relayed)
		printf("  relayed: yes%s%s%s\n", p->relay_reason[0] ? " (" : "", p->relay_reason,
		       p->relay_reason[0] ? ")" : "");
	print_recovery(p);
	printf("  latest handshake: ");
	print_ago(p->last_handshake);
	printf("\n  transfer: ");
	print_bytes(p->rx_bytes);
	printf(" received, ");
	print_bytes(p->tx_bytes);
	printf(" sent\n");
}

static void print_status(const struct control_status *st)
{
	char b64[WG_KEY_B64_LEN + 1];

	if (!st->n_interfaces)
		printf("no interfaces managed\n");
	for (size_t i = 0; i < st->n_interfaces; i++) {
		const struct control_interface *in = &st->interfaces[i];

		printf("%sinterface: %s (%s)\n", i ? "\n" : "", in->name, in->kind);
		if (in->has_public_key) {
			key_to_base64(b64, in->public_key);
			printf("  public key: %s\n", b64);
		}
		if (in->listen_port)
			printf("  listening port: %u\n", in->listen_port);
		if (in->signaling_backends)
			printf("  signaling: %u of %u backend%s connected, %u connection%s lost "
			       "since the start\n",
			       in->signaling_connected, in->signaling_backends,
			       in->signaling_backends == 1 ? "" : "s", in->signaling_disconnects,
			       in->signaling_disconnects == 1 ? "" : "s");
		for (size_t j = 0; j < in->n_peers; j++)
			print_peer(&in->peers[j]);
	}
}

static int parse_args(int argc, char **argv, bool *json, const char **path)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			*json = true;
		else if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			*path = argv[++i];
		else if (!strncmp(argv[i], "--socket=", 9))
			*path = argv[i] + 9;
		else
			return -EINVAL;
	}
	return 0;
}

int cmd_status(int argc, char **argv)
{
	const char *path = CONTROL_SOCKET_DEFAULT;
	struct control_status st;
	char *json = NULL, *error = NULL;
	bool as_json = false;
	size_t len;
	int r;

	if (cli_wants_help(argc, argv, usage))
		return 0;
	if (parse_args(argc, argv, &as_json, &path) < 0) {
		fputs(usage, stderr);
		return 1;
	}
	r = control_client_status(path, CONTROL_CLIENT_TIMEOUT_MS, &json, &len);
	if (r < 0) {
		fprintf(stderr, "wice: cannot ask the daemon at %s: %s\n", path, strerror(-r));
		return 1;
	}
	r = control_status_from_json(json, len, &st, &error);
	if (as_json && r != -EBADMSG)
		fwrite(json, 1, len, stdout);
	else if (r == 0)
		print_status(&st);
	if (r == -EREMOTEIO)
		fprintf(stderr, "wice: the daemon says: %s\n", error);
	else if (r < 0)
		fprintf(stderr, "wice: the daemon's answer is not a status document\n");
	if (r == 0)
		control_status_clear(&st);
	g_free(error);
	g_free(json);
	return r < 0 || fflush(stdout) ? 1 : 0;
}
