/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "util/file.h"

int file_read_all(const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	int r = 0;

	if (!f)
		return -errno;
	buf = malloc(max + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	/* Read one byte more than allowed, to tell "exactly max" from "too large". */
	len = fread(buf, 1, max + 1, f);
	if (ferror(f))
		r = -EIO;
	else if (len > max)
		r = -EFBIG;
out:
	fclose(f);
	if (r) {
		free(buf);
		return r;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	if (ret_len)
		*ret_len = len;
	return 0;
}
