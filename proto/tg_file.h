/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_file.h - reading a whole small file with a size bound: configuration,
 * workflows, prompts. A larger file is refused, never cut.
 */
#ifndef TG_FILE_H
#define TG_FILE_H

#include <stddef.h>

/**
 * tg_read_file() - read a file into memory, NUL-terminated
 * @path:      the file
 * @max_bytes: the largest size accepted
 * @len:       set to its length (may be NULL)
 * @errstr:    on failure, the reason (without the path: callers prefix it)
 * @n:         its size
 *
 * Return: the malloc()ed bytes (one NUL byte beyond @len), or NULL.
 */
char *tg_read_file(const char *path, size_t max_bytes, size_t *len, char *errstr, size_t n);

#endif
