/* util.c — error reporting, half-precision conversion, allocation and file helpers. */
#include "core/util.h"
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <time.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>

static _Thread_local char g_err[1024];

const char *bitnet_last_error(void) { return g_err; }

const char *bitnet_version(void) { return BITNET_VERSION; }

bitnet_status bitnet_write_file_atomic(const char *path, const void *data, size_t len) { return bn_write_file_atomic(path, data, len); }

const char *bitnet_status_str(bitnet_status s) {
    switch (s) {
    case BITNET_OK: return "ok";
    case BITNET_ERR_IO: return "I/O error";
    case BITNET_ERR_FORMAT: return "format error";
    case BITNET_ERR_UNSUPPORTED: return "unsupported";
    case BITNET_ERR_ARG: return "bad argument";
    case BITNET_ERR_NOMEM: return "out of memory";
    case BITNET_ERR_NUMERIC: return "numeric error";
    }
    return "unknown error";
}

bitnet_status bn_err(bitnet_status s, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return s;
}

bitnet_status bn_err_prefix(bitnet_status s, const char *prefix) {
    char tmp[sizeof g_err];
    snprintf(tmp, sizeof tmp, "%s%s", prefix, g_err);
    memcpy(g_err, tmp, sizeof g_err);
    return s;
}

float bn_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: normalise */
            int e = -1; do { e++; man <<= 1; } while (!(man & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) u = sign | 0x7f800000 | (man << 13);
    else u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f; memcpy(&f, &u, 4); return f;
}

uint16_t bn_f32_to_f16(float f) {
    uint32_t u; memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000; int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffff;
    if (((u >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000; int shift = 14 - exp;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

void *bn_alloc(size_t n) {
    void *p = NULL;
    if (n == 0) n = 1;
    size_t r = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, r) != 0) return NULL;
    memset(p, 0, r);
    return p;
}
void bn_free(void *p) { free(p); }

long long bn_time_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
double bn_time(void) { return (double)bn_time_ns() * 1e-9; }

bitnet_status bn_read_file_max(const char *path, size_t max, char **out, size_t *len) {
    *out = NULL; if (len) *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return bn_err(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) { bitnet_status s = bn_err(BITNET_ERR_IO, "%s: cannot stat: %s", path, strerror(errno)); close(fd); return s; }
    if (!S_ISREG(st.st_mode)) { close(fd); return bn_err(BITNET_ERR_IO, "%s: not a regular file%s", path, S_ISDIR(st.st_mode) ? " (it is a directory)" : ""); }
    if ((uint64_t)st.st_size > (uint64_t)max || (uint64_t)st.st_size >= (uint64_t)SIZE_MAX) {
        close(fd);
        return bn_err(BITNET_ERR_FORMAT, "%s: %lld bytes is too large for this file (limit %zu)", path, (long long)st.st_size, max);
    }
    size_t sz = (size_t)st.st_size;
    char *b = malloc(sz + 1);
    if (!b) { close(fd); return bn_err(BITNET_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, sz); }
    size_t r = 0;
    while (r < sz) {
        ssize_t k = read(fd, b + r, sz - r);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { bitnet_status s = bn_err(BITNET_ERR_IO, "%s: read failed: %s", path, strerror(errno)); free(b); close(fd); return s; }
        if (k == 0) break; /* shrank while reading */
        r += (size_t)k;
    }
    close(fd);
    if (r != sz) { free(b); return bn_err(BITNET_ERR_IO, "%s: short read", path); }
    b[r] = 0; *out = b; if (len) *len = r;
    return BITNET_OK;
}

bitnet_status bn_read_file(const char *path, char **out, size_t *len) {
    return bn_read_file_max(path, SIZE_MAX - 1, out, len);
}

bitnet_status bn_map_file(const char *path, const void **data, size_t *size) {
    *data = NULL; *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return bn_err(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    bitnet_status s = BITNET_OK;
    if (fstat(fd, &sb) != 0) s = bn_err(BITNET_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode)) s = bn_err(BITNET_ERR_IO, "%s: not a regular file%s", path, S_ISDIR(sb.st_mode) ? " (it is a directory)" : "");
    else if ((uint64_t)sb.st_size >= (uint64_t)SIZE_MAX) s = bn_err(BITNET_ERR_FORMAT, "%s: too large to map", path);
    else if (sb.st_size == 0) *data = "";
    else {
        void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) s = bn_err(BITNET_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        else { *data = map; *size = (size_t)sb.st_size; }
    }
    close(fd);
    return s;
}

void bn_unmap_file(const void *data, size_t size) { if (data && size) munmap((void *)data, size); }

char *bn_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

int bn_file_exists(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISREG(st.st_mode); }
int bn_is_dir(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }

bitnet_status bn_write_file_atomic(const char *path, const void *data, size_t len) {
    return bn_write_parts_atomic(path, &data, &len, 1);
}

bitnet_status bn_write_parts_atomic(const char *path, const void *const *parts, const size_t *lens, int nparts) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) { bitnet_status s = bn_err(BITNET_ERR_IO, "%s: cannot create temp file: %s", path, strerror(errno)); free(tmp); return s; }
    for (int i = 0; i < nparts; i++) {
        const char *p = parts[i]; size_t left = lens[i];
        while (left) {
            ssize_t w = write(fd, p, left);
            if (w < 0) { if (errno == EINTR) continue;
                bitnet_status s = bn_err(BITNET_ERR_IO, "%s: write failed: %s", path, strerror(errno));
                close(fd); unlink(tmp); free(tmp); return s; }
            p += w; left -= (size_t)w;
        }
    }
    fchmod(fd, 0644);
    if (fsync(fd) != 0 || close(fd) != 0) {
        bitnet_status s = bn_err(BITNET_ERR_IO, "%s: flush failed: %s", path, strerror(errno));
        unlink(tmp); free(tmp); return s;
    }
    if (rename(tmp, path) != 0) {
        bitnet_status s = bn_err(BITNET_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
        unlink(tmp); free(tmp); return s;
    }
    free(tmp);
    return BITNET_OK;
}
