/* tests/t.h: the tiny test harness shared by every tests/test_*.c.
 * Each CHECK prints "ok NAME" or "FAIL NAME: why"; tests/run.sh counts those lines.
 * A test binary exits non-zero when any check failed. Not a framework: no fixtures, no skips. */
#ifndef BITNET_T_H
#define BITNET_T_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int t_failed, t_passed;

#define CHECK(name, cond, ...) do { \
    if (cond) { t_passed++; printf("ok %s\n", (name)); } \
    else { t_failed++; printf("FAIL %s: ", (name)); printf(__VA_ARGS__); printf("  (%s:%d)\n", __FILE__, __LINE__); } \
    fflush(stdout); } while (0)

#define T_DONE() do { printf("# %s: %d passed, %d failed\n", __FILE__, t_passed, t_failed); \
    return t_failed ? 1 : 0; } while (0)

/* Directory holding the golden files (copied from ../shared/golden). */
static inline const char *t_golden(void) {
    const char *g = getenv("BITNET_GOLDEN");
    return g ? g : "tests/golden";
}

/* Read a whole file; returns malloc'd buffer and size, or NULL. */
static inline void *t_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb"); if (!f) return NULL;
    fseek(f, 0, SEEK_END); long sz = ftell(f); fseek(f, 0, SEEK_SET);
    void *b = malloc(sz + 1); if (!b) { fclose(f); return NULL; }
    size_t r = fread(b, 1, sz, f); fclose(f);
    ((char *)b)[r] = 0; if (n) *n = r; return b;
}
#endif
