/* SPDX-License-Identifier: MIT */
/*
 * config: the daemon's settings from command-line flags and a YAML file, with the same keys.
 *
 *   key         flag             YAML                     meaning
 *   backend     --backend URL    backend: URL | [URL..]   signaling backend, repeatable
 *   ice_server  --ice-server URL ice_server: URL | [..]   stun:/turn:/turns: URL, repeatable
 *   interfaces  --interfaces G   interfaces: G | [G..]    filter: names or fnmatch(3) globs
 *   log_level   --log-level L    log_level: L             error, warn, info, debug
 *   socket      --socket PATH    socket: PATH             control socket
 *   (flags only) --config FILE; positional IFACE...: the only interfaces managed.
 *
 * Flags override the file; a list given by flags replaces the file's list rather than adding
 * to it, so the command line always says the whole truth about a key it names. The file is
 * parsed strictly: unknown or repeated keys, a wrong type (a mapping where a string belongs,
 * a list for log_level), anchors and aliases, and more than one document are errors that
 * name the line and column.
 */
#ifndef WICE_DAEMON_CONFIG_H
#define WICE_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_LIST	 64	   /* entries per list */
#define CONFIG_MAX_VALUE 1024	   /* bytes of one value */
#define CONFIG_MAX_FILE	 (1 << 20) /* bytes of the YAML file */
#define CONFIG_MAX_DEPTH 3	   /* stream > document > mapping > sequence */
#define CONFIG_ERROR_LEN 256

struct config_list {
	char **v;
	size_t n;
};

struct config {
	struct config_list backends, ice_servers, interfaces;
	struct config_list names; /* positional: interfaces named on the command line */
	int log_level;		  /* enum log_level; -1 when not set */
	char *socket;		  /* NULL when not set */
	char *config_file;	  /* --config, NULL when not given */
};

/* Where a problem was found; line and column count from 1, 0 when not in a file. */
struct config_error {
	char msg[CONFIG_ERROR_LEN];
	size_t line, column;
};

/*
 * The whole configuration: argv[0] is the subcommand's name and skipped; with --config FILE
 * the file is read first and the flags applied over it. Returns 0, -EINVAL for a bad flag or
 * value, -EBADMSG for bad YAML, or the errno of opening the file. err (may be NULL) says what
 * and where; *ret is written only on success.
 */
int config_parse_args(int argc, char *const *argv, struct config *ret, struct config_error *err);

/*
 * Merges the file's keys into cfg, replacing each list or value the file names. On failure
 * cfg is unchanged.
 */
int config_load_file(const char *path, struct config *cfg, struct config_error *err);
/* Same, from memory; name is what errors call the file. */
int config_load_buffer(const char *name, const char *buf, size_t len, struct config *cfg,
		       struct config_error *err);

/* Frees what cfg holds and resets it to empty (log_level -1). Accepts NULL. */
void config_free(struct config *cfg);
void config_init(struct config *cfg);

#endif
