/* SPDX-License-Identifier: MIT */
#ifndef WICE_UTIL_FILE_H
#define WICE_UTIL_FILE_H

#include <stddef.h>

/* Reads a whole file of at most max bytes into a NUL-terminated malloc'd buffer (PEM
 * certificates and keys). Returns 0, -errno from open, -EFBIG when larger than max, -EIO,
 * -ENOMEM. The caller wipes the buffer if it holds a secret. */
int file_read_all(const char *path, size_t max, char **ret_buf, size_t *ret_len);

#endif
