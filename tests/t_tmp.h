/* tests/t_tmp.h: a per-test temporary folder (test_dist.c, test_lora.c, test_sft.c): t_tmp_make()
 * creates it under /tmp, tpath(name) names a file in it (4 rotating buffers, so up to 4 paths
 * may be live at once), t_tmp_remove() deletes it with its contents. Not a harness (that is t.h). */
#ifndef BITNET_T_TMP_H
#define BITNET_T_TMP_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpd[64];
static char *tpath(const char *name) {
    static char b[4][256]; static int k;
    char *p = b[k++ & 3]; snprintf(p, 256, "%s/%s", tmpd, name); return p;
}
/* 0 on success; prefix names the test, e.g. "bn_test_dist". */
static int t_tmp_make(const char *prefix) {
    snprintf(tmpd, sizeof tmpd, "/tmp/%s_XXXXXX", prefix);
    if (mkdtemp(tmpd)) return 0;
    printf("FAIL tmp: mkdtemp %s\n", tmpd);
    return 1;
}
static void t_tmp_remove(void) {
    char cmd[128]; snprintf(cmd, sizeof cmd, "rm -rf %s", tmpd);
    if (system(cmd)) printf("note: could not remove %s\n", tmpd);
}
#endif
