/* SPDX-License-Identifier: MIT */
/* config: flags and a strict YAML file (libyaml events), one table of keys for both. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <yaml.h>
#include "daemon/config.h"
#include "daemon/wgctl.h"
#include "util/log.h"

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))

enum key_type { KEY_LIST, KEY_STRING, KEY_LEVEL };

struct key_desc {
	const char *name; /* YAML key; the flag is "--" and this with '_' as '-' */
	enum key_type type;
	size_t off;
	int (*check)(const char *v); /* 0 or -EINVAL */
};

static bool has_scheme(const char *v, const char *const *schemes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(schemes[i]);

		if (!strncmp(v, schemes[i], len) && v[len] == ':' && v[len + 1])
			return true;
	}
	return false;
}

static int check_backend(const char *v)
{
	static const char *const schemes[] = {"grpc", "grpcs", "ws", "wss", "inprocess"};

	return has_scheme(v, schemes, ARRAY_SIZE(schemes)) ? 0 : -EINVAL;
}

static int check_ice_server(const char *v)
{
	static const char *const schemes[] = {"stun", "turn", "turns"};

	return has_scheme(v, schemes, ARRAY_SIZE(schemes)) ? 0 : -EINVAL;
}

static int check_pattern(const char *v)
{
	return *v && !strchr(v, '/') ? 0 : -EINVAL;
}

static int check_socket(const char *v)
{
	return *v && strlen(v) < sizeof(((struct sockaddr_un *)0)->sun_path) ? 0 : -EINVAL;
}

static const struct key_desc keys[] = {
	{"backend", KEY_LIST, offsetof(struct config, backends), check_backend},
	{"ice_server", KEY_LIST, offsetof(struct config, ice_servers), check_ice_server},
	{"interfaces", KEY_LIST, offsetof(struct config, interfaces), check_pattern},
	{"log_level", KEY_LEVEL, offsetof(struct config, log_level), NULL},
	{"socket", KEY_STRING, offsetof(struct config, socket), check_socket},
};

#define N_KEYS ARRAY_SIZE(keys)

/* Values collected from one source, applied to a config only when all of them were good. */
struct pending {
	struct config c;
	bool set[N_KEYS];
};

static void seterr(struct config_error *err, const char *name, size_t line, size_t col,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void seterr(struct config_error *err, const char *name, size_t line, size_t col,
		   const char *fmt, ...)
{
	char text[CONFIG_ERROR_LEN];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	err->line = line;
	err->column = col;
	/* A long file name shortens the message; it never overflows it. */
	if (line &&
	    snprintf(err->msg, sizeof(err->msg), "%s:%zu:%zu: %s", name, line, col, text) < 0)
		err->msg[0] = '\0';
	else if (!line)
		memcpy(err->msg, text, sizeof(text));
}

/* ---- the struct ---- */

static void list_clear(struct config_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct config_list){0};
}

static int list_add(struct config_list *l, const char *v)
{
	char **nv;

	if (l->n >= CONFIG_MAX_LIST)
		return -E2BIG;
	nv = reallocarray(l->v, l->n + 2, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	l->v = nv;
	l->v[l->n] = strdup(v);
	if (!l->v[l->n])
		return -ENOMEM;
	l->v[++l->n] = NULL;
	return 0;
}

void config_init(struct config *cfg)
{
	*cfg = (struct config){.log_level = -1};
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	list_clear(&cfg->backends);
	list_clear(&cfg->ice_servers);
	list_clear(&cfg->interfaces);
	list_clear(&cfg->names);
	free(cfg->socket);
	free(cfg->config_file);
	config_init(cfg);
}

static const struct key_desc *key_find(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

/* Checks and stores one value of key k into p; a list grows, anything else is replaced. */
static int pending_set(struct pending *p, const struct key_desc *k, const char *v)
{
	void *field = (char *)&p->c + k->off;
	char **s = field;
	int level;

	if (strlen(v) > CONFIG_MAX_VALUE || (k->check && k->check(v) < 0))
		return -EINVAL;
	p->set[k - keys] = true;
	switch (k->type) {
	case KEY_LIST:
		return list_add(field, v);
	case KEY_STRING:
		free(*s);
		*s = strdup(v);
		return *s ? 0 : -ENOMEM;
	case KEY_LEVEL:
		level = log_level_parse(v);
		if (level < 0)
			return -EINVAL;
		*(int *)field = level;
		return 0;
	}
	return -EINVAL;
}

/* Moves every key p set into cfg, replacing what cfg had. */
static void pending_apply(struct pending *p, struct config *cfg)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		void *dst = (char *)cfg + keys[i].off, *src = (char *)&p->c + keys[i].off;

		if (!p->set[i])
			continue;
		switch (keys[i].type) {
		case KEY_LIST:
			list_clear(dst);
			*(struct config_list *)dst = *(struct config_list *)src;
			*(struct config_list *)src = (struct config_list){0};
			break;
		case KEY_STRING:
			free(*(char **)dst);
			*(char **)dst = *(char **)src;
			*(char **)src = NULL;
			break;
		case KEY_LEVEL:
			*(int *)dst = *(int *)src;
			break;
		}
	}
}

/* ---- YAML ---- */

struct yparse {
	yaml_parser_t parser;
	yaml_event_t ev;
	bool have_ev;
	const char *name;
	struct config_error *err;
};

static int y_fail(struct yparse *y, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An error at the current event; always -EINVAL (the YAML was fine, its content is not). */
static int y_fail(struct yparse *y, const char *fmt, ...)
{
	char text[CONFIG_ERROR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	seterr(y->err, y->name, y->ev.start_mark.line + 1, y->ev.start_mark.column + 1, "%s", text);
	return -EINVAL;
}

static bool y_has_anchor_or_tag(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return true;
	case YAML_SCALAR_EVENT:
		return ev->data.scalar.anchor || ev->data.scalar.tag;
	case YAML_SEQUENCE_START_EVENT:
		return ev->data.sequence_start.anchor || ev->data.sequence_start.tag;
	case YAML_MAPPING_START_EVENT:
		return ev->data.mapping_start.anchor || ev->data.mapping_start.tag;
	default:
		return false;
	}
}

static int y_next(struct yparse *y)
{
	if (y->have_ev)
		yaml_event_delete(&y->ev);
	y->have_ev = false;
	if (!yaml_parser_parse(&y->parser, &y->ev)) {
		seterr(y->err, y->name, y->parser.problem_mark.line + 1,
		       y->parser.problem_mark.column + 1, "%s",
		       y->parser.problem ? y->parser.problem : "invalid YAML");
		return -EBADMSG;
	}
	y->have_ev = true;
	/* Anchors and aliases let a small file expand; tags would change a value's type. */
	if (y_has_anchor_or_tag(&y->ev))
		return y_fail(y, "anchors, aliases and tags are not allowed");
	return 0;
}

/* A plain ~, null or nothing is YAML's null: a key without a value. */
static bool y_scalar_is_null(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
		!strcmp(v, "NULL"));
}

static int y_value(struct yparse *y, struct pending *p, const struct key_desc *k)
{
	const char *v = (const char *)y->ev.data.scalar.value;
	int r;

	if (y_scalar_is_null(&y->ev))
		return y_fail(y, "'%s' needs a value", k->name);
	/* A scalar's length counts NULs that strlen would not: "\0" escapes are not text. */
	if (strlen(v) != y->ev.data.scalar.length)
		return y_fail(y, "'%s': a NUL character in a value", k->name);
	r = pending_set(p, k, v);
	if (r == -E2BIG)
		return y_fail(y, "'%s': more than %d values", k->name, CONFIG_MAX_LIST);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return y_fail(y, "'%s': invalid value '%.64s'", k->name, v);
	return 0;
}

static int y_key(struct yparse *y, struct pending *p, const struct key_desc *k)
{
	int r = y_next(y);

	if (r < 0)
		return r;
	if (y->ev.type == YAML_SCALAR_EVENT)
		return y_value(y, p, k);
	if (y->ev.type != YAML_SEQUENCE_START_EVENT || k->type != KEY_LIST)
		return y_fail(y, "'%s' must be %s", k->name,
			      k->type == KEY_LIST ? "a string or a list of strings" : "a string");
	for (;;) {
		r = y_next(y);
		if (r < 0 || y->ev.type == YAML_SEQUENCE_END_EVENT)
			return r;
		if (y->ev.type != YAML_SCALAR_EVENT)
			return y_fail(y, "'%s' must be a list of strings", k->name);
		r = y_value(y, p, k);
		if (r < 0)
			return r;
	}
}

static int y_mapping(struct yparse *y, struct pending *p)
{
	const struct key_desc *k;
	int r;

	for (;;) {
		r = y_next(y);
		if (r < 0 || y->ev.type == YAML_MAPPING_END_EVENT)
			return r;
		if (y->ev.type != YAML_SCALAR_EVENT)
			return y_fail(y, "a key must be a string");
		k = key_find((const char *)y->ev.data.scalar.value);
		if (!k)
			return y_fail(y, "unknown key '%.64s'", y->ev.data.scalar.value);
		if (p->set[k - keys])
			return y_fail(y, "'%s' given twice", k->name);
		r = y_key(y, p, k);
		if (r < 0)
			return r;
	}
}

/* stream-start (document-start (mapping | empty) document-end)? stream-end */
static int y_document(struct yparse *y, struct pending *p)
{
	int r = y_next(y);

	if (r == 0 && y->ev.type != YAML_STREAM_START_EVENT)
		r = y_fail(y, "not a YAML stream");
	if (r == 0)
		r = y_next(y);
	if (r < 0 || y->ev.type == YAML_STREAM_END_EVENT)
		return r;
	r = y_next(y); /* past document-start */
	if (r < 0)
		return r;
	if (y->ev.type == YAML_MAPPING_START_EVENT)
		r = y_mapping(y, p);
	else if (y->ev.type != YAML_SCALAR_EVENT || !y_scalar_is_null(&y->ev))
		r = y_fail(y, "the configuration must be a mapping of keys to values");
	if (r == 0)
		r = y_next(y); /* document-end */
	if (r == 0)
		r = y_next(y);
	if (r == 0 && y->ev.type != YAML_STREAM_END_EVENT)
		r = y_fail(y, "only one YAML document is allowed");
	return r;
}

int config_load_buffer(const char *name, const char *buf, size_t len, struct config *cfg,
		       struct config_error *err)
{
	struct yparse y = {.name = name, .err = err};
	struct pending p = {0};
	int r;

	config_init(&p.c);
	if (len > CONFIG_MAX_FILE) {
		seterr(err, name, 0, 0, "%s: larger than %d bytes", name, CONFIG_MAX_FILE);
		return -EFBIG;
	}
	if (!yaml_parser_initialize(&y.parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)buf, len);
	r = y_document(&y, &p);
	if (y.have_ev)
		yaml_event_delete(&y.ev);
	yaml_parser_delete(&y.parser);
	if (r == 0)
		pending_apply(&p, cfg);
	config_free(&p.c);
	return r;
}

int config_load_file(const char *path, struct config *cfg, struct config_error *err)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t len;
	int r;

	if (!f) {
		r = -errno;
		seterr(err, path, 0, 0, "%s: %s", path, strerror(-r));
		return r;
	}
	buf = malloc(CONFIG_MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(buf, 1, CONFIG_MAX_FILE + 1, f);
	r = ferror(f) ? -EIO : 0;
	fclose(f);
	if (r < 0)
		seterr(err, path, 0, 0, "%s: read error", path);
	else
		r = config_load_buffer(path, buf, len, cfg, err);
	free(buf);
	return r;
}

/* ---- flags ---- */

/* "--ice-server" names ice_server: the flag is the key with '-' for '_'. */
static const struct key_desc *flag_find(const char *flag, size_t len)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const char *k = keys[i].name;
		size_t j;

		if (strlen(k) != len)
			continue;
		for (j = 0; j < len; j++)
			if (flag[j] != (k[j] == '_' ? '-' : k[j]))
				break;
		if (j == len)
			return &keys[i];
	}
	return NULL;
}

/* Splits "--name=value" or "--name value"; *i moves past what was used. */
static int flag_value(int argc, char *const *argv, int *i, const char **ret_name, size_t *ret_len,
		      const char **ret_value, struct config_error *err)
{
	const char *arg = argv[*i] + 2, *eq = strchr(arg, '=');

	*ret_name = arg;
	*ret_len = eq ? (size_t)(eq - arg) : strlen(arg);
	if (eq) {
		*ret_value = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc) {
		seterr(err, NULL, 0, 0, "%s needs a value", argv[*i]);
		return -EINVAL;
	}
	*ret_value = argv[++*i];
	return 0;
}

static int parse_flags(int argc, char *const *argv, struct pending *p, struct config_error *err)
{
	bool positional_only = false;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *name, *value;
		const struct key_desc *k;
		size_t len;

		if (positional_only || arg[0] != '-' || !strcmp(arg, "-")) {
			if (!wgctl_ifname_valid(arg)) {
				seterr(err, NULL, 0, 0, "'%.64s' is not an interface name", arg);
				return -EINVAL;
			}
			r = list_add(&p->c.names, arg);
			if (r < 0)
				return r;
			continue;
		}
		if (!strcmp(arg, "--")) {
			positional_only = true;
			continue;
		}
		if (strncmp(arg, "--", 2)) {
			seterr(err, NULL, 0, 0, "unknown option '%.64s'", arg);
			return -EINVAL;
		}
		r = flag_value(argc, argv, &i, &name, &len, &value, err);
		if (r < 0)
			return r;
		if (len == strlen("config") && !strncmp(name, "config", len)) {
			free(p->c.config_file);
			p->c.config_file = strdup(value);
			if (!p->c.config_file)
				return -ENOMEM;
			continue;
		}
		k = flag_find(name, len);
		if (!k) {
			seterr(err, NULL, 0, 0, "unknown option '--%.*s'", (int)MIN(len, 64), name);
			return -EINVAL;
		}
		r = pending_set(p, k, value);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			seterr(err, NULL, 0, 0, "--%.*s: invalid value '%.64s'", (int)len, name,
			       value);
			return -EINVAL;
		}
	}
	return 0;
}

int config_parse_args(int argc, char *const *argv, struct config *ret, struct config_error *err)
{
	struct pending flags = {0};
	struct config cfg;
	int r;

	config_init(&cfg);
	config_init(&flags.c);
	r = parse_flags(argc, argv, &flags, err);
	if (r == 0 && flags.c.config_file)
		r = config_load_file(flags.c.config_file, &cfg, err);
	if (r < 0) {
		config_free(&flags.c);
		config_free(&cfg);
		return r;
	}
	pending_apply(&flags, &cfg);
	cfg.names = flags.c.names;
	cfg.config_file = flags.c.config_file;
	flags.c.names = (struct config_list){0};
	flags.c.config_file = NULL;
	config_free(&flags.c);
	*ret = cfg;
	return 0;
}
