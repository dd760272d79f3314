/* test_release.c — the loader lets go of the mmap'd source pages of each ternary matrix once
 * repacked (bn_files_release / bn_st_release): the folder provider's pages leave the resident set
 * (measured by RssFile in /proc/self/status) and stay readable with the same bytes; memory given
 * by a caller (memory provider) is never touched; a quantized head lets the float head's pages go. Not: a peak-RSS benchmark (docs/PERFORMANCE.md). */
#include "t.h"
#include "bitnet.h"
#include "io/files.h"
#include "io/safetensors.h"
#include <stdlib.h>
#include <unistd.h>

/* RssFile of this process in KiB, or -1 where /proc does not give it. */
static long rss_file_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256]; long v = -1;
    while (fgets(line, sizeof line, f)) if (!strncmp(line, "RssFile:", 8)) { v = atol(line + 8); break; }
    fclose(f);
    return v;
}

int main(void) {
    if (rss_file_kib() < 0) { printf("# skip: no RssFile in /proc/self/status (not Linux >= 4.5): nothing measures residency\n"); T_DONE(); }
    char dir[] = "/tmp/bitnet_release_XXXXXX";
    CHECK("temp folder", mkdtemp(dir) != NULL, "mkdtemp failed");
    /* 1. folder provider: an 8 MiB file, read in full, released: resident drops, bytes unchanged */
    size_t n = (size_t)8 << 20;
    uint8_t *want = malloc(n);
    for (size_t i = 0; i < n; i++) want[i] = (uint8_t)(i * 2654435761u >> 13);
    char path[600]; snprintf(path, sizeof path, "%s/blob.bin", dir);
    FILE *f = fopen(path, "wb");
    CHECK("write blob", f && fwrite(want, 1, n, f) == n && fclose(f) == 0, " ");
    bn_src src = bn_src_dir(dir);
    const void *map; size_t size;
    CHECK("open blob", bn_src_open(&src, "blob.bin", &map, &size) == BITNET_OK && size == n, " ");
    long r0 = rss_file_kib();
    CHECK("mapped bytes are the file's", !memcmp(map, want, n), " ");
    long r1 = rss_file_kib();
    bn_files_release(&src.f, map, size, (const uint8_t *)map + 100, n - 200);  /* interior pages only */
    long r2 = rss_file_kib();
    CHECK("reading the map makes it resident", r1 - r0 >= 7 * 1024, "RssFile %ld -> %ld KiB", r0, r1);
    CHECK("released pages leave the resident set", r1 - r2 >= 7 * 1024, "RssFile %ld -> %ld KiB after release", r1, r2);
    CHECK("released bytes read back unchanged", !memcmp(map, want, n), " ");
    bn_files_release(&src.f, map, size, (const uint8_t *)map + n - 10, 100);  /* past the end: no-op */
    bn_files_close(&src.f, map, size);
    /* 2. memory provider: the caller's page-aligned buffer is left alone */
    uint8_t *buf = aligned_alloc(4096, n);
    memcpy(buf, want, n);
    bitnet_file_buf bufs[] = {{"blob.bin", buf, n}, {NULL, NULL, 0}};
    bitnet_files mf = bitnet_files_from_memory(bufs);
    bn_files_release(&mf, buf, n, buf, n);
    CHECK("memory provider: caller's bytes untouched", !memcmp(buf, want, n), " ");
    free(buf); free(want);
    remove(path); rmdir(dir);
    /* 3. a model loaded from its folder keeps at most half its ternary source bytes resident */
    char mdir[600]; snprintf(mdir, sizeof mdir, "%s/bitnet-b158-packed", t_golden());
    char mfile[700]; snprintf(mfile, sizeof mfile, "%s/model.safetensors", mdir);
    size_t fsz = 0; void *whole = t_read_file(mfile, &fsz);
    free(whole);
    bitnet_model *m = NULL;
    if (bitnet_model_load(mdir, &m) == BITNET_OK) bitnet_model_free(m);  /* fault in the loader's code pages first */
    m = NULL;
    long m0 = rss_file_kib();
    CHECK("load golden packed model", bitnet_model_load(mdir, &m) == BITNET_OK, "%s", bitnet_last_error());
    long m1 = rss_file_kib();
    if (m) {
        bitnet_model_info in; bitnet_model_get_info(m, &in);
        long src_kib = (long)(in.n_ternary / 4 / 1024), file_kib = (long)(fsz / 1024);
        CHECK("loaded model: ternary source pages dropped", m1 - m0 <= file_kib - src_kib / 2,
              "RssFile grew %ld KiB for a %ld KiB file holding %ld KiB of packed ternary", m1 - m0, file_kib, src_kib);
        /* 4. a quantized head lets the float head's pages go (read only for embedding rows now) */
        long head_kib = (long)in.vocab_size * in.hidden_size * 2 / 1024;
        CHECK("set q4 head", bitnet_model_set_head(m, BITNET_HEAD_Q4) == BITNET_OK, "%s", bitnet_last_error());
        long m2 = rss_file_kib();
        CHECK("q4 head: float head pages dropped", m1 - m2 >= head_kib / 2, "RssFile %ld -> %ld KiB, head %ld KiB", m1, m2, head_kib);
    }
    bitnet_model_free(m);
    T_DONE();
}
