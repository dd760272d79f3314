/* cmd_export.c — `bitnet export --packed IN_DIR OUT_DIR`: write a 2B-4T packed inference
 * checkpoint (uint8 ternary + bf16 weight_scale) from master weights (src/train_export.c). */
#include "cli.h"
#include "train_export.h"

int cmd_export(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: bitnet export --packed IN_DIR OUT_DIR\n"); return 0;
    }
    if (argc != 4 || strcmp(argv[1], "--packed")) {
        fprintf(stderr, "usage: bitnet export --packed IN_DIR OUT_DIR\n"); return 2;
    }
    if (bn_export_packed(argv[2], argv[3]) != BITNET_OK) return cli_fail("export");
    fprintf(stderr, "wrote packed checkpoint to %s\n", argv[3]);
    return 0;
}
