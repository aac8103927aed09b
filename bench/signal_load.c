/* SPDX-License-Identifier: MIT */
/*
 * Load generator for bench/signal.sh (a benchmark, not a test): N clients subscribed to a
 * running `wice signal` over gRPC or WebSocket, publishing to each other on loopback.
 *
 *   signal_load grpc|ws HOST:PORT N [--server-pid PID] [--window W] [--warmup S]
 *               [--duration S] [--settle S] [--lat-rate R] [--per-conn K] [--payload B]
 *               [--no-sat] [--no-lat] [--unary]
 *
 * One process, one thread driving every connection (a gRPC completion queue in
 * signal_load_grpc.c, or one libwebsockets context on a libev loop in signal_load_ws.c), so
 * that N = 10,000 does not mean 10,000 threads, contexts and channels as it would with one
 * src/signal backend per client. It speaks the server's protocol itself:
 * GetChallenge/Subscribe/Publish (src/signal/grpc.c) or the WebSocket frames (src/server/ws.c),
 * with auth_prove for the proof. Envelopes are opaque to the server, so they are not sealed:
 * a well-formed Envelope from the publisher's proven key to the target's, whose "ciphertext"
 * carries a slot, a generation and a send time (CLOCK_MONOTONIC, same process).
 *
 * Phases, each printed as one "key=value ..." line on stdout:
 *   idle  connect and subscribe all N; after --settle, the server's VmRSS against before.
 *   sat   closed loop: W messages circulate; a client that receives one publishes the next
 *         to a random other client at once. Deliveries counted over --duration after
 *         --warmup. A message not delivered within SLOT_LOST_MS is counted lost and replaced.
 *   lat   open loop at --lat-rate (default: half the sat rate) from random clients to random
 *         others; latency from the scheduled send time (so a late sender is not hidden) to
 *         receipt; p50/p99 over the messages scheduled in the window.
 * CPU of the server (from /proc/PID/stat) and of this process (getrusage) over each window.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sodium.h>
#include "signal_load.h"

struct load L;

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t rnd(uint32_t bound)
{
	/* xorshift64*: cheap, and the benchmark needs no more than spread. */
	L.rng ^= L.rng >> 12;
	L.rng ^= L.rng << 25;
	L.rng ^= L.rng >> 27;
	return (uint32_t)(((L.rng * 2685821657736338717ull) >> 32) % bound);
}

static uint32_t other_than(uint32_t self)
{
	return (self + 1 + rnd(L.n - 1)) % L.n;
}

/* ---- measurements ---- */

static long proc_kib(const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", L.server_pid);
	f = L.server_pid ? fopen(path, "re") : NULL;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, fl) && line[fl] == ':')
			v = strtol(line + fl + 1, NULL, 10);
	fclose(f);
	return v;
}

static uint64_t server_ticks(void)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", L.server_pid);
	f = L.server_pid ? fopen(path, "re") : NULL;
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15, counted from after the command name's closing parenthesis. */
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return ut + st;
}

static uint64_t own_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static struct window_snap snap(uint64_t count)
{
	return (struct window_snap){now_ns(), server_ticks(), own_cpu_us(), count};
}

/* CPU % of one core, server and load generator, between two snapshots. */
static void cpu_pct(const struct window_snap *a, const struct window_snap *b, double *srv,
		    double *own)
{
	double secs = (double)(b->t_ns - a->t_ns) / 1e9;

	*srv = (double)(b->srv_ticks - a->srv_ticks) / (double)sysconf(_SC_CLK_TCK) / secs * 100;
	*own = (double)(b->own_us - a->own_us) / 1e6 / secs * 100;
}

/* ---- envelopes and frames (protobuf wire format by hand: fixed, tiny messages) ---- */

static size_t put_varint(uint8_t *p, size_t v)
{
	size_t n = 0;

	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

size_t put_bytes(uint8_t *p, unsigned int field, const void *data, size_t len)
{
	size_t n = 0;

	p[n++] = (uint8_t)(field << 3 | 2);
	n += put_varint(p + n, len);
	memcpy(p + n, data, len);
	return n + len;
}

/* Envelope{sender, recipient, ephemeral, nonce, ciphertext = payload and filler}. */
static size_t envelope_build(uint8_t *out, const struct client *from, uint32_t to, uint32_t slot,
			     uint32_t gen, uint64_t ts_ns)
{
	static uint64_t counter;
	uint8_t ct[4096 + sizeof(struct payload)] = {0}, eph[32] = {1}, nonce[24] = {0};
	struct payload pl = {BENCH_MAGIC, slot, gen, to, ts_ns};
	size_t n = 0;

	counter++;
	memcpy(nonce, &counter, sizeof(counter));
	memcpy(ct, &pl, sizeof(pl));
	n += put_bytes(out + n, 1, from->key.public_key, 32);
	n += put_bytes(out + n, 2, L.c[to].key.public_key, 32);
	n += put_bytes(out + n, 3, eph, sizeof(eph));
	n += put_bytes(out + n, 4, nonce, sizeof(nonce));
	n += put_bytes(out + n, 5, ct, L.payload);
	return n;
}

/* The last length-delimited field of buf numbered 1..max: its number, data and length; 0
 * when there is none, -1 when buf is malformed or holds another wire type. */
int pb_field(const uint8_t *buf, size_t len, unsigned int max, unsigned int want,
	     const uint8_t **ret, size_t *ret_len)
{
	size_t i = 0;
	int found = 0;

	while (i < len) {
		uint64_t key = 0, l = 0;
		unsigned int sh = 0;

		do {
			if (i >= len || sh > 63)
				return -1;
			key |= (uint64_t)(buf[i] & 0x7f) << sh;
			sh += 7;
		} while (buf[i++] & 0x80);
		if ((key & 7) == 0) { /* varint: skip */
			while (i < len && buf[i++] & 0x80)
				;
			continue;
		}
		if ((key & 7) != 2)
			return -1;
		sh = 0;
		do {
			if (i >= len || sh > 63)
				return -1;
			l |= (uint64_t)(buf[i] & 0x7f) << sh;
			sh += 7;
		} while (buf[i++] & 0x80);
		if (l > len - i)
			return -1;
		if ((key >> 3) >= 1 && (key >> 3) <= max && (!want || (key >> 3) == want)) {
			found = (int)(key >> 3);
			*ret = buf + i;
			*ret_len = (size_t)l;
		}
		i += (size_t)l;
	}
	return found;
}

/* ---- the core: what happens on a delivery, and the phases ---- */

static int transport_publish(struct client *from, const uint8_t *env, size_t len, uint32_t slot,
			     uint32_t gen)
{
	return L.ws ? ws_publish(from, env, len, slot, gen)
		    : grpc_publish(from, env, len, slot, gen);
}

static void publish_from(struct client *from, uint32_t to, uint32_t slot, uint32_t gen,
			 uint64_t ts_ns)
{
	uint8_t env[ENV_MAX];
	size_t len = envelope_build(env, from, to, slot, gen, ts_ns);

	if (transport_publish(from, env, len, slot, gen) < 0)
		L.pub_fail++;
}

static void slot_send(uint32_t s, struct client *from)
{
	uint64_t t = now_ns();

	if (!from->up) {
		L.slot_busy[s] = false;
		L.in_flight--;
		return;
	}
	L.slot_ns[s] = t;
	publish_from(from, other_than(from->idx), s, L.slot_gen[s], t);
}

static void slot_inject(uint32_t s)
{
	for (int tries = 0; tries < 16; tries++) {
		struct client *c = &L.c[rnd(L.n)];

		if (c->up) {
			L.slot_gen[s]++;
			if (!L.slot_busy[s]) {
				L.slot_busy[s] = true;
				L.in_flight++;
			}
			slot_send(s, c);
			return;
		}
	}
}

/* A message could not be delivered (Publish failed or reached nobody): free its slot. */
void slot_failed(uint32_t slot, uint32_t gen)
{
	L.pub_fail++;
	if (slot >= L.window || !L.slot_busy[slot] || L.slot_gen[slot] != gen)
		return;
	L.slot_busy[slot] = false;
	L.in_flight--;
	if (L.injecting)
		slot_inject(slot);
}

void on_envelope(struct client *c, const uint8_t *env, size_t len)
{
	const uint8_t *ct, *rcpt;
	size_t ctl, rl;
	struct payload pl;
	uint64_t t = now_ns();

	if (pb_field(env, len, 5, 2, &rcpt, &rl) != 2 || rl != 32 ||
	    memcmp(rcpt, c->key.public_key, 32) || pb_field(env, len, 5, 5, &ct, &ctl) != 5 ||
	    ctl < sizeof(pl)) {
		L.misrouted++;
		return;
	}
	memcpy(&pl, ct, sizeof(pl));
	if (pl.magic != BENCH_MAGIC || pl.target != c->idx) {
		L.misrouted++;
		return;
	}
	L.delivered++;
	if (pl.slot == UINT32_MAX) { /* paced */
		if (pl.ts_ns >= L.m_start && pl.ts_ns < L.m_end) {
			L.m_recv++;
			if (L.n_lat < L.cap_lat)
				L.lat_us[L.n_lat++] = (uint32_t)((t - pl.ts_ns) / 1000);
		}
		return;
	}
	if (pl.slot >= L.window || !L.slot_busy[pl.slot] || L.slot_gen[pl.slot] != pl.gen)
		return; /* counted lost already */
	if (L.injecting) {
		slot_send(pl.slot, c);
	} else {
		L.slot_busy[pl.slot] = false;
		L.in_flight--;
	}
}

static void slot_scan(uint64_t t)
{
	if (t - L.last_scan_ns < 100000000u)
		return;
	L.last_scan_ns = t;
	for (uint32_t s = 0; s < L.window; s++) {
		if (!L.slot_busy[s] || t - L.slot_ns[s] < (uint64_t)SLOT_LOST_MS * 1000000u)
			continue;
		L.lost++;
		L.slot_busy[s] = false;
		L.in_flight--;
		if (L.injecting)
			slot_inject(s);
	}
}

static void pace(uint64_t t)
{
	uint64_t due = (uint64_t)((double)(t - L.pace_ns) * L.rate / 1e9);

	while (L.pace_sent < due) {
		uint64_t ts = L.pace_ns + (uint64_t)((double)L.pace_sent * 1e9 / L.rate);
		struct client *from = &L.c[rnd(L.n)];

		L.pace_sent++;
		if (ts >= L.m_start && ts < L.m_end)
			L.m_sent++;
		if (from->up)
			publish_from(from, other_than(from->idx), UINT32_MAX, 0, ts);
		else
			L.pub_fail++;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t pct(double p)
{
	return L.n_lat ? L.lat_us[(size_t)((double)(L.n_lat - 1) * p)] : 0;
}

static void set_phase(enum phase p, uint64_t t)
{
	L.phase = p;
	L.phase_ns = t;
}

static void start_lat(uint64_t t)
{
	double secs = L.duration_s;

	L.rate = L.lat_rate > 0 ? L.lat_rate : L.sat_rate / 2;
	if (!L.lat || L.rate < 1) {
		L.done = true;
		return;
	}
	L.cap_lat = (size_t)(L.rate * secs * 1.1) + 1024;
	L.lat_us = calloc(L.cap_lat, sizeof(*L.lat_us));
	if (!L.lat_us) {
		L.done = true;
		return;
	}
	L.pace_ns = t;
	L.pace_sent = 0;
	L.m_start = t + (uint64_t)(L.warmup_s * 1e9);
	L.m_end = L.m_start + (uint64_t)(secs * 1e9);
	set_phase(P_LAT_WARM, t);
}

static void print_lat(void)
{
	double srv, own;

	cpu_pct(&L.lat0, &L.lat1, &srv, &own);
	qsort(L.lat_us, L.n_lat, sizeof(*L.lat_us), cmp_u32);
	printf("lat rate=%.0f sent=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64
	       " p50_us=%u p90_us=%u p99_us=%u p999_us=%u max_us=%u srv_cpu=%.0f gen_cpu=%.0f\n",
	       L.rate, L.m_sent, L.m_recv, L.m_sent > L.m_recv ? L.m_sent - L.m_recv : 0, pct(0.5),
	       pct(0.9), pct(0.99), pct(0.999), pct(1.0), srv, own);
	fflush(stdout);
}

static void print_sat(const struct window_snap *a, const struct window_snap *b)
{
	double secs = (double)(b->t_ns - a->t_ns) / 1e9, srv, own;

	cpu_pct(a, b, &srv, &own);
	L.sat_rate = (double)(b->count - a->count) / secs;
	printf("sat window=%u secs=%.1f delivered=%" PRIu64 " rate=%.0f lost=%" PRIu64
	       " pub_fail=%" PRIu64 " misrouted=%" PRIu64 " srv_cpu=%.0f gen_cpu=%.0f\n",
	       L.window, secs, b->count - a->count, L.sat_rate, L.lost, L.pub_fail, L.misrouted,
	       srv, own);
	if (L.pub_calls) /* since saturation began: how much the gRPC clients batched */
		printf("batch calls=%" PRIu64 " env_per_call=%.2f\n", L.pub_calls,
		       (double)L.pub_envs / (double)L.pub_calls);
	fflush(stdout);
}

static void transport_connect(struct client *c)
{
	if (L.ws)
		ws_connect(c);
	else
		grpc_connect(c);
}

void tick(void)
{
	uint64_t t = now_ns(), el = t - L.phase_ns;

	switch (L.phase) {
	case P_CONNECT:
		while (L.connecting < CONNECT_INFLIGHT && L.next_connect < L.n) {
			L.connecting++;
			transport_connect(&L.c[L.next_connect++]);
		}
		if (L.n_up + L.n_down == L.n ||
		    t - L.connect_ns > CONNECT_TIMEOUT_MS * 1000000ull) {
			printf("connect n=%u up=%u failed=%u secs=%.1f\n", L.n, L.n_up, L.n_down,
			       (double)(t - L.connect_ns) / 1e9);
			fflush(stdout);
			if (L.n_up < L.n) {
				L.done = true;
				return;
			}
			set_phase(P_SETTLE, t);
		}
		return;
	case P_SETTLE:
		if (el < (uint64_t)(L.settle_s * 1e9))
			return;
		{
			long rss1 = proc_kib("VmRSS");

			printf("idle n=%u rss0_kib=%" PRIu64 " rss1_kib=%ld per_sub_bytes=%.0f\n",
			       L.n, L.rss0, rss1, (double)(rss1 - (long)L.rss0) * 1024.0 / L.n);
			fflush(stdout);
		}
		if (!L.sat) {
			start_lat(t);
			return;
		}
		L.injecting = true;
		for (uint32_t s = 0; s < L.window; s++)
			slot_inject(s);
		set_phase(P_SAT_WARM, t);
		return;
	case P_SAT_WARM:
		slot_scan(t);
		if (el >= (uint64_t)(L.warmup_s * 1e9)) {
			L.sat0 = snap(L.delivered);
			set_phase(P_SAT, t);
		}
		return;
	case P_SAT:
		slot_scan(t);
		if (el >= (uint64_t)(L.duration_s * 1e9)) {
			struct window_snap end = snap(L.delivered);

			print_sat(&L.sat0, &end);
			L.injecting = false;
			set_phase(P_SAT_DRAIN, t);
		}
		return;
	case P_SAT_DRAIN:
		slot_scan(t);
		if (!L.in_flight || el >= DRAIN_MS * 1000000ull)
			start_lat(t);
		return;
	case P_LAT_WARM:
		pace(t);
		if (t >= L.m_start) {
			L.lat0 = snap(0);
			set_phase(P_LAT, t);
		}
		return;
	case P_LAT:
		pace(t);
		if (t >= L.m_end) {
			L.lat1 = snap(0);
			set_phase(P_LAT_DRAIN, t);
		}
		return;
	case P_LAT_DRAIN:
		if (el >= DRAIN_MS * 1000000ull) {
			print_lat();
			L.done = true;
		}
		return;
	}
}

uint64_t tick_us(void)
{
	return L.phase == P_LAT_WARM || L.phase == P_LAT ? PACE_TICK_US : TICK_US;
}

void on_up(struct client *c)
{
	c->up = true;
	L.n_up++;
	L.connecting--;
}

void on_down(struct client *c)
{
	if (c->gone)
		return;
	c->gone = true;
	if (c->up) {
		c->up = false;
		L.n_up--;
	} else {
		L.connecting--;
	}
	L.n_down++;
}

/* ---- main ---- */

/* Up to the hard limit: raising that needs CAP_SYS_RESOURCE, which a container may lack. */
static void raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		fprintf(stderr, "signal_load: RLIMIT_NOFILE %lu, below the %lu wanted\n",
			(unsigned long)rl.rlim_cur, (unsigned long)want);
}

static const char usage[] =
	"Usage: signal_load grpc|ws HOST:PORT N [--server-pid PID] [--window W] [--warmup S]\n"
	"         [--duration S] [--settle S] [--lat-rate R] [--per-conn K] [--payload B]\n"
	"         [--no-sat] [--no-lat] [--unary]\n";

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{"server-pid", required_argument, NULL, 'p'},
		{"window", required_argument, NULL, 'w'},
		{"warmup", required_argument, NULL, 'W'},
		{"duration", required_argument, NULL, 'd'},
		{"settle", required_argument, NULL, 's'},
		{"lat-rate", required_argument, NULL, 'r'},
		{"per-conn", required_argument, NULL, 'k'},
		{"payload", required_argument, NULL, 'b'},
		{"no-sat", no_argument, NULL, 'S'},
		{"no-lat", no_argument, NULL, 'l'},
		{"unary", no_argument, NULL, 'u'},
		{0},
	};
	static char host[256];
	const char *colon;
	int o;

	L.per_conn = 1;
	L.payload = 96;
	L.warmup_s = 3;
	L.duration_s = 10;
	L.settle_s = 2;
	L.sat = L.lat = true;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			L.server_pid = atoi(optarg);
			break;
		case 'w':
			L.window = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'W':
			L.warmup_s = atof(optarg);
			break;
		case 'd':
			L.duration_s = atof(optarg);
			break;
		case 's':
			L.settle_s = atof(optarg);
			break;
		case 'r':
			L.lat_rate = atof(optarg);
			break;
		case 'k':
			L.per_conn = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			L.payload = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'S':
			L.sat = false;
			break;
		case 'l':
			L.lat = false;
			break;
		case 'u':
			L.unary = true;
			break;
		default:
			return -EINVAL;
		}
	}
	if (argc - optind != 3 || (strcmp(argv[optind], "grpc") && strcmp(argv[optind], "ws")))
		return -EINVAL;
	L.ws = !strcmp(argv[optind], "ws");
	colon = strrchr(argv[optind + 1], ':');
	if (!colon || (size_t)(colon - argv[optind + 1]) >= sizeof(host))
		return -EINVAL;
	memcpy(host, argv[optind + 1], (size_t)(colon - argv[optind + 1]));
	L.host = host;
	L.port = atoi(colon + 1);
	L.n = (uint32_t)strtoul(argv[optind + 2], NULL, 10);
	if (L.n < 2 || L.n > MAX_CLIENTS || !L.port || !L.per_conn || L.per_conn > 15 ||
	    L.payload < sizeof(struct payload) || L.payload > 4096)
		return -EINVAL;
	if (!L.window) /* enough in flight to keep the server busy, not to flood its queues */
		L.window = L.n * 8 < 64 ? 64 : L.n * 8 > 2048 ? 2048 : L.n * 8;
	return 0;
}

int main(int argc, char **argv)
{
	int r;

	if (parse_args(argc, argv) < 0) {
		fputs(usage, stderr);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	raise_nofile(L.n + 1024);
	randombytes_buf(&L.rng, sizeof(L.rng));
	L.rng |= 1;
	L.c = calloc(L.n, sizeof(*L.c));
	L.slot_ns = calloc(L.window, sizeof(*L.slot_ns));
	L.slot_gen = calloc(L.window, sizeof(*L.slot_gen));
	L.slot_busy = calloc(L.window, sizeof(*L.slot_busy));
	if (!L.c || !L.slot_ns || !L.slot_gen || !L.slot_busy)
		return 1;
	for (uint32_t i = 0; i < L.n; i++) {
		L.c[i].idx = i;
		crypto_box_keypair(L.c[i].key.public_key, L.c[i].key.private_key);
	}
	L.m_start = L.m_end = UINT64_MAX;
	L.rss0 = (uint64_t)(proc_kib("VmRSS") > 0 ? proc_kib("VmRSS") : 0);
	L.connect_ns = now_ns();
	set_phase(P_CONNECT, L.connect_ns);
	r = L.ws ? ws_run() : grpc_run();
	if (r < 0) {
		fprintf(stderr, "signal_load: %s\n", strerror(-r));
		return 1;
	}
	fflush(stdout);
	_exit(L.n_up == L.n ? 0 : 1);
}
