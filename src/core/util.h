/* util.h — internal helpers shared by the library: error reporting, float formats, allocation.
 * Not public: include/bitnet.h is the API. */
#ifndef BITNET_UTIL_H
#define BITNET_UTIL_H
#include "bitnet.h"
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

/* Set the thread-local error message (printf format) and return s. */
bitnet_status bn_err(bitnet_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current error message with a context string ("file: "). Returns s. */
bitnet_status bn_err_prefix(bitnet_status s, const char *prefix);

static inline float bn_bf16_to_f32(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
static inline uint16_t bn_f32_to_bf16(float f) { /* round to nearest even, NaN kept */
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1); return (uint16_t)(u >> 16);
}
float bn_f16_to_f32(uint16_t h);
uint16_t bn_f32_to_f16(float f);

/* Aligned (64-byte) zeroed allocation; free with bn_free. NULL on failure. */
void *bn_alloc(size_t n);
void bn_free(void *p);

/* The monotonic clock (the library reads it here only): seconds, nanoseconds. */
double bn_time(void);
long long bn_time_ns(void);

/* Read a whole regular file into a malloc'd NUL-terminated buffer (*len bytes, may hold NULs).
 * A directory or other non-regular file is an IO error naming the path; a file over max bytes
 * is a FORMAT error naming the size and the limit. bn_read_file: no size limit. */
bitnet_status bn_read_file_max(const char *path, size_t max, char **out, size_t *len);
bitnet_status bn_read_file(const char *path, char **out, size_t *len);
/* Map a whole regular file read-only (mmap, private): *data, *size bytes; an empty file gives
 * *data = "" and *size = 0. A directory or other non-regular file is an IO error naming the
 * path. Unmap with bn_unmap_file(*data, *size) (a no-op for size 0). */
bitnet_status bn_map_file(const char *path, const void **data, size_t *size);
void bn_unmap_file(const void *data, size_t size);
/* Size limit for small JSON companions (config.json, generation_config.json, the shard index). */
#define BN_SMALL_FILE_MAX ((size_t)64 << 20)
/* Join dir and name into a malloc'd path. */
char *bn_path_join(const char *dir, const char *name);
int bn_file_exists(const char *path);
int bn_is_dir(const char *path);

/* Write len bytes to path atomically (temp file in the same dir + fsync + rename). */
bitnet_status bn_write_file_atomic(const char *path, const void *data, size_t len);
/* The same for a file made of nparts pieces parts[i] of lens[i] bytes, written in order. */
bitnet_status bn_write_parts_atomic(const char *path, const void *const *parts, const size_t *lens, int nparts);
#endif
