/* safetensors.h — read-only access to .safetensors files (single or sharded via
 * model.safetensors.index.json), mmap'd from a folder or handed over by a file provider (files.h). Every header length, offset, shape and dtype is
 * validated before use; a tensor's bytes are guaranteed to lie inside its file.
 * Also a small writer (float32/bf16/u8 tensors) used by training and export. */
#ifndef BITNET_SAFETENSORS_H
#define BITNET_SAFETENSORS_H
#include "core/util.h"
#include "io/files.h"

typedef enum { BN_F32, BN_F16, BN_BF16, BN_U8, BN_I8, BN_I32, BN_I64, BN_DT_COUNT } bn_dtype;
size_t bn_dtype_size(bn_dtype t);
const char *bn_dtype_name(bn_dtype t);

#define BN_MAX_DIMS 4
typedef struct bn_tensor {
    const char *name;
    bn_dtype dtype;
    int ndim;
    int64_t shape[BN_MAX_DIMS];
    int64_t numel;
    const void *data;       /* inside the mmap; may be unaligned for its dtype */
    size_t nbytes;
    const char *file;       /* file it came from (for messages) */
} bn_tensor;

typedef struct bn_st bn_st; /* a set of tensors from one or more files */

/* Open a single .safetensors file. */
bitnet_status bn_st_open(const char *path, bn_st **out);
/* Open a model folder: model.safetensors, or the shards named in model.safetensors.index.json. */
bitnet_status bn_st_open_dir(const char *dir, bn_st **out);
/* Open through a file provider: the file `name`, or (name NULL) model.safetensors, else the
 * shards of model.safetensors.index.json. Files stay open (in place) until bn_st_free. */
bitnet_status bn_st_open_src(const bn_src *src, const char *name, bn_st **out);
void bn_st_free(bn_st *st);
int bn_st_count(const bn_st *st);
const bn_tensor *bn_st_at(const bn_st *st, int i);
/* NULL if absent (no error set). */
const bn_tensor *bn_st_find(const bn_st *st, const char *name);
/* Find a tensor and check dtype set (bitmask of 1<<bn_dtype) and shape (ndim dims; -1 = any).
 * Error names the file, tensor and the mismatch. */
bitnet_status bn_st_get(const bn_st *st, const char *name, unsigned dtypes, int ndim,
                        const int64_t *shape, const bn_tensor **out);
/* Convert element i.. of a float tensor (F32/F16/BF16) into dst[n] float32. */
void bn_tensor_to_f32(const bn_tensor *t, float *dst, int64_t start, int64_t n);

/* Writer: collect tensors, then write the file atomically. Data is copied. */
typedef struct bn_st_writer bn_st_writer;
bitnet_status bn_st_writer_new(bn_st_writer **out);
bitnet_status bn_st_writer_add(bn_st_writer *w, const char *name, bn_dtype dt, int ndim,
                               const int64_t *shape, const void *data);
bitnet_status bn_st_writer_save(bn_st_writer *w, const char *path);
void bn_st_writer_free(bn_st_writer *w);
#endif
