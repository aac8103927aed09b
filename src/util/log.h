/* SPDX-License-Identifier: MIT */
/* Logging to stderr: one line per event, level first. Never pass key material. */
#ifndef WICE_UTIL_LOG_H
#define WICE_UTIL_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_max_level;

void log_printf(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_level_parse(const char *name); /* returns a level or -EINVAL */

#define log_error(...) log_printf(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_printf(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_printf(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_max_level >= LOG_LVL_DEBUG)                                                \
			log_printf(LOG_LVL_DEBUG, __VA_ARGS__);                                    \
	} while (0)

#endif
