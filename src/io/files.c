/* files.c — file providers (see files.h): a folder (mmap) and memory buffers. */
#include "io/files.h"
#include <sys/mman.h>
#include <unistd.h>

static bitnet_status dir_open(void *ud, const char *name, const void **data, size_t *size) {
    char *path = bn_path_join(ud, name);
    if (!path) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    bitnet_status s = bn_map_file(path, data, size);
    free(path);
    return s;
}
static void dir_close(void *ud, const void *data, size_t size) { bn_unmap_file(data, size); }

void bn_files_release(const bitnet_files *f, const void *data, size_t size, const void *p, size_t n) {
    if (f->close != dir_close || !size) return;   /* only our own mmap may be dropped */
    uintptr_t b0 = (uintptr_t)data, b1 = b0 + size, a0 = (uintptr_t)p, a1 = a0 + n;
    if (a0 < b0 || a1 > b1 || a1 < a0) return;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    a0 = (a0 + pg - 1) / pg * pg; a1 = a1 / pg * pg;     /* the whole pages inside the range */
    if (a1 > a0) madvise((void *)a0, a1 - a0, MADV_DONTNEED);
}

bn_src bn_src_dir(const char *dir) {
    bn_src s = {{(void *)dir, dir_open, dir_close}, dir, 1};
    return s;
}

bn_src bn_src_user(const bitnet_files *f) {
    bn_src s = {*f, NULL, 0};
    return s;
}

char *bn_src_path(const bn_src *s, const char *name) { return s->where ? bn_path_join(s->where, name) : strdup(name); }

bitnet_status bn_src_open(const bn_src *s, const char *name, const void **data, size_t *size) {
    *data = NULL; *size = 0;
    if (!s->f.open) return bn_err(BITNET_ERR_ARG, "file provider has no open function");
    bitnet_status st = s->f.open(s->f.ud, name, data, size);
    if (st == BITNET_OK && !*data && *size) st = BITNET_ERR_FORMAT;
    if (st != BITNET_OK && !s->sets_errors) {
        char *p = bn_src_path(s, name);
        st = bn_err(st, "%s: cannot open (file provider: %s)", p ? p : name, bitnet_status_str(st));
        free(p);
    }
    if (st == BITNET_OK && !*data) *data = "";
    return st;
}

bitnet_status bn_src_open_small(const bn_src *s, const char *name, const void **data, size_t *size) {
    bitnet_status st = bn_src_open(s, name, data, size);
    if (st || *size <= BN_SMALL_FILE_MAX) return st;
    char *p = bn_src_path(s, name);
    st = bn_err(BITNET_ERR_FORMAT, "%s: %zu bytes is too large for this file (limit %zu)", p ? p : name, *size, (size_t)BN_SMALL_FILE_MAX);
    free(p);
    bn_files_close(&s->f, *data, *size);
    *data = NULL; *size = 0;
    return st;
}

void bn_files_close(const bitnet_files *f, const void *data, size_t size) {
    if (f->close) f->close(f->ud, data, size);
}

/* ---- memory provider: an array of {name, data, size} ended by name == NULL ---- */
static bitnet_status mem_open(void *ud, const char *name, const void **data, size_t *size) {
    for (const bitnet_file_buf *b = ud; b && b->name; b++)
        if (!strcmp(b->name, name)) { *data = b->data; *size = b->size; return BITNET_OK; }
    return BITNET_ERR_IO;
}

bitnet_files bitnet_files_from_memory(const bitnet_file_buf *bufs) {
    bitnet_files f = {(void *)bufs, mem_open, NULL};
    return f;
}
