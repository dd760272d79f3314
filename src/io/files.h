/* files.h — where a model's files come from: a file provider (bitnet_files, bitnet.h) plus the
 * prefix used to name its files in messages. Two providers live here: a folder (each file
 * mmap'd read-only) and caller-owned memory buffers (bitnet_files_from_memory). The loaders
 * (safetensors.c, config.c, loader.c) only ever see bytes through a bn_src.
 * Not: a VFS; a provider hands out whole files, by plain name. */
#ifndef BITNET_FILES_H
#define BITNET_FILES_H
#include "core/util.h"

typedef struct bn_src {
    bitnet_files f;
    const char *where;   /* prefix for messages ("dir" -> "dir/config.json"), NULL for none */
    int sets_errors;     /* 1: f.open sets the bn_err message itself (our providers) */
} bn_src;

/* The folder provider over dir (not copied: dir must outlive the open calls; close needs
 * nothing). open mmaps dir/name; BITNET_ERR_IO if it is missing or not a regular file. */
bn_src bn_src_dir(const char *dir);
/* A caller's provider (messages name files by their plain name). */
bn_src bn_src_user(const bitnet_files *f);
/* Open name through s; on failure the error message names the file. */
bitnet_status bn_src_open(const bn_src *s, const char *name, const void **data, size_t *size);
/* Size limit for small JSON companions (config.json, the shard index); util.h may define it. */
#ifndef BN_SMALL_FILE_MAX
#define BN_SMALL_FILE_MAX ((size_t)64 << 20)
#endif
/* bn_src_open for a small JSON file: over BN_SMALL_FILE_MAX bytes is a FORMAT error ("too
 * large", the file closed again). */
bitnet_status bn_src_open_small(const bn_src *s, const char *name, const void **data, size_t *size);
/* Give back what bn_src_open returned (no-op for providers without close). */
void bn_files_close(const bitnet_files *f, const void *data, size_t size);
/* The display path of name under s (malloc'd; NULL when out of memory). */
char *bn_src_path(const bn_src *s, const char *name);
#endif
