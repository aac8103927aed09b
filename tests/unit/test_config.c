// SPDX-License-Identifier: MIT
/*
 * config: flags alone, the file alone, flags over the file (lists replaced, not merged), and a
 * table of files the strict parser must refuse, each with the line it must blame.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "daemon/config.h"
#include "util/log.h"

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

static char tmpdir[64];

static int setup(void **state)
{
	strcpy(tmpdir, "/tmp/wice-config-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static char *write_file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int parse(struct config *cfg, struct config_error *err, ...)
{
	char *argv[32] = {"daemon"};
	int argc = 1;
	va_list ap;

	va_start(ap, err);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	return config_parse_args(argc, argv, cfg, err);
}

static void assert_list(const struct config_list *l, size_t n, ...)
{
	va_list ap;

	assert_int_equal(l->n, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(l->v[i], va_arg(ap, const char *));
	va_end(ap);
}

static void test_empty(void **state)
{
	struct config cfg;

	assert_int_equal(parse(&cfg, NULL, NULL), 0);
	assert_int_equal(cfg.backends.n + cfg.ice_servers.n + cfg.interfaces.n + cfg.names.n, 0);
	assert_int_equal(cfg.log_level, -1);
	assert_null(cfg.socket);
	assert_null(cfg.config_file);
	config_free(&cfg);
}

static void test_flags(void **state)
{
	struct config cfg;

	assert_int_equal(parse(&cfg, NULL, "--backend", "grpc://signal:8080", "--backend=ws://s/x",
			       "--ice-server", "stun:stun.example:3478", "--ice-server",
			       "turn:u:p@relay:3478?transport=tcp", "--interfaces", "wg*",
			       "--log-level=debug", "--socket", "/tmp/w.sock", "wg0", "--", "--odd",
			       NULL),
			 0);
	assert_list(&cfg.backends, 2, "grpc://signal:8080", "ws://s/x");
	assert_list(&cfg.ice_servers, 2, "stun:stun.example:3478",
		    "turn:u:p@relay:3478?transport=tcp");
	assert_list(&cfg.interfaces, 1, "wg*");
	assert_list(&cfg.names, 2, "wg0", "--odd");
	assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
	assert_string_equal(cfg.socket, "/tmp/w.sock");
	config_free(&cfg);
}

static void test_file_only(void **state)
{
	char *path = write_file("only.yaml", "# wice\n"
					     "backend:\n"
					     "  - grpc://a:1\n"
					     "  - wss://b/c\n"
					     "ice_server: stun:s:3478\n"
					     "interfaces: [wg0, 'tun*']\n"
					     "log_level: warn\n"
					     "socket: \"/run/w/x.sock\"\n");
	struct config cfg;

	assert_int_equal(parse(&cfg, NULL, "--config", path, NULL), 0);
	assert_list(&cfg.backends, 2, "grpc://a:1", "wss://b/c");
	assert_list(&cfg.ice_servers, 1, "stun:s:3478");
	assert_list(&cfg.interfaces, 2, "wg0", "tun*");
	assert_int_equal(cfg.log_level, LOG_LVL_WARN);
	assert_string_equal(cfg.socket, "/run/w/x.sock");
	assert_string_equal(cfg.config_file, path);
	config_free(&cfg);
}

/* Flags win; a list from flags replaces the file's; what flags leave alone stays the file's. */
static void test_precedence(void **state)
{
	char *path = write_file("prec.yaml", "backend: [grpc://file1:1, grpc://file2:2]\n"
					     "ice_server: [stun:file:3478]\n"
					     "log_level: info\n"
					     "socket: /file.sock\n");
	struct config cfg;

	/* Flags before --config still win: the file is read first whatever the order. */
	assert_int_equal(parse(&cfg, NULL, "--backend", "ws://flag/x", "--socket", "/flag.sock",
			       "--config", path, NULL),
			 0);
	assert_list(&cfg.backends, 1, "ws://flag/x");
	assert_list(&cfg.ice_servers, 1, "stun:file:3478");
	assert_int_equal(cfg.log_level, LOG_LVL_INFO);
	assert_string_equal(cfg.socket, "/flag.sock");
	config_free(&cfg);
}

static void test_empty_file(void **state)
{
	struct config cfg;

	config_init(&cfg);
	assert_int_equal(config_load_buffer("e", "", 0, &cfg, NULL), 0);
	assert_int_equal(config_load_buffer("e", "---\n", 4, &cfg, NULL), 0);
	assert_int_equal(config_load_buffer("e", "# nothing\n", 10, &cfg, NULL), 0);
	assert_int_equal(cfg.backends.n, 0);
	config_free(&cfg);
}

static const struct {
	const char *yaml;
	int err;
	size_t line;
	const char *says;
} bad_files[] = {
	{"backend: [grpc://a:1\n", -EBADMSG, 2, ""},
	{"log_level: info\n- bad\n", -EBADMSG, 2, ""},
	{"socket: \"unterminated\n", -EBADMSG, 2, ""},
	{"log_level: info\n\nfoo: 1\n", -EINVAL, 3, "unknown key 'foo'"},
	{"backends: [grpc://a:1]\n", -EINVAL, 1, "unknown key 'backends'"},
	{"log_level: [info]\n", -EINVAL, 1, "'log_level' must be a string"},
	{"log_level: loud\n", -EINVAL, 1, "invalid value 'loud'"},
	{"socket: {a: b}\n", -EINVAL, 1, "'socket' must be a string"},
	{"backend:\n  - grpc://a:1\n  - [nested]\n", -EINVAL, 3, "must be a list of strings"},
	{"backend: {a: b}\n", -EINVAL, 1, "a string or a list"},
	{"backend: http://a\n", -EINVAL, 1, "invalid value"},
	{"ice_server: [stun:a, 'ftp:b']\n", -EINVAL, 1, "invalid value 'ftp:b'"},
	{"socket:\n", -EINVAL, 1, "needs a value"},
	{"socket: ~\n", -EINVAL, 1, "needs a value"},
	{"socket: /a\nsocket: /b\n", -EINVAL, 2, "given twice"},
	{"- backend\n", -EINVAL, 1, "must be a mapping"},
	{"just a string\n", -EINVAL, 1, "must be a mapping"},
	{"? [a]\n: b\n", -EINVAL, 1, "a key must be a string"},
	{"socket: &s /a\n", -EINVAL, 1, "anchors"},
	{"socket: *x\n", -EINVAL, 1, "anchors"},
	{"socket: !!str /a\n", -EINVAL, 1, "anchors, aliases and tags"},
	{"socket: /a\n---\nsocket: /b\n", -EINVAL, 2, "one YAML document"},
	{"socket: \"/a\\0b\"\n", -EINVAL, 1, "NUL"},
	{"interfaces: [a/b]\n", -EINVAL, 1, "invalid value"},
};

static void test_bad_files(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_files); i++) {
		struct config cfg;
		struct config_error err = {0};
		int r;

		config_init(&cfg);
		r = config_load_buffer("t.yaml", bad_files[i].yaml, strlen(bad_files[i].yaml), &cfg,
				       &err);
		if (r != bad_files[i].err || err.line != bad_files[i].line ||
		    !strstr(err.msg, bad_files[i].says))
			fail_msg("case %zu (%s): r=%d line=%zu msg=%s", i, bad_files[i].yaml, r,
				 err.line, err.msg);
		/* Nothing of a refused file is kept. */
		assert_int_equal(cfg.backends.n + cfg.ice_servers.n + cfg.interfaces.n, 0);
		assert_null(cfg.socket);
		assert_int_equal(cfg.log_level, -1);
	}
}

static void test_list_limit(void **state)
{
	char yaml[CONFIG_MAX_LIST * 24 + 32], *p = yaml;
	struct config cfg;
	struct config_error err;

	p += sprintf(p, "backend:\n");
	for (int i = 0; i <= CONFIG_MAX_LIST; i++)
		p += sprintf(p, "  - grpc://h%d:1\n", i);
	config_init(&cfg);
	assert_int_equal(config_load_buffer("l", yaml, strlen(yaml), &cfg, &err), -EINVAL);
	assert_int_equal(err.line, CONFIG_MAX_LIST + 2);
	assert_non_null(strstr(err.msg, "more than"));
	config_free(&cfg);
}

static void test_bad_flags(void **state)
{
	struct config cfg, before;
	struct config_error err;

	memset(&cfg, 0xa5, sizeof(cfg));
	before = cfg;
	assert_int_equal(parse(&cfg, &err, "--nope", "x", NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "unknown option '--nope'"));
	assert_int_equal(parse(&cfg, &err, "-v", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &err, "--backend", NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "needs a value"));
	assert_int_equal(parse(&cfg, &err, "--backend", "http://x", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &err, "--log-level", "loud", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &err, "--log_level", "info", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &err, "a/b", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &err, "waytoolongforaninterface", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &err, "--config", "/nonexistent/w.yaml", NULL), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/w.yaml"));
	/* A bad file fails the whole parse, and the file's line is named. */
	assert_int_equal(parse(&cfg, &err, "--config", write_file("b.yaml", "x: 1\n"), NULL),
			 -EINVAL);
	assert_int_equal(err.line, 1);
	/* ret_ parameters are written only on success. */
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),	   cmocka_unit_test(test_flags),
		cmocka_unit_test(test_file_only),  cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_empty_file), cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_list_limit), cmocka_unit_test(test_bad_flags),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
