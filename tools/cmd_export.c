/* cmd_export.c — `bitnet export --packed IN_DIR OUT_DIR`: write a 2B-4T packed inference
 * checkpoint (uint8 ternary + bf16 weight_scale) from master weights (src/train_export.c),
 * with IN_DIR's tokenizer files. Refuses a full-precision (--no-quant) IN_DIR and an OUT_DIR
 * that already holds a model unless --force. */
#include "cli.h"
#include "bitnet_train.h"

static const char *USAGE =
    "usage: bitnet export --packed [--force] IN_DIR OUT_DIR\n"
    "  IN_DIR: a training output or HF master checkpoint (config.json + float model.safetensors);\n"
    "  its tokenizer files (tokenizer.json, tokenizer_config.json, ...) are copied to OUT_DIR.\n"
    "  --force  ternarize a full-precision (--no-quant) checkpoint anyway, and overwrite OUT_DIR's model\n";

int cmd_export(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int packed = 0, force = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(USAGE, stdout); return 0; }
        else if (!strcmp(argv[i], "--packed")) packed = 1;
        else if (!strcmp(argv[i], "--force")) force = 1;
        else if (argv[i][0] == '-') { fprintf(stderr, "bitnet export: unknown option '%s'\n%s", argv[i], USAGE); return 2; }
        else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else { fprintf(stderr, "bitnet export: unexpected argument '%s'\n%s", argv[i], USAGE); return 2; }
    }
    if (!packed || !in || !out) { fputs(USAGE, stderr); return 2; }
    char *mp = cli_path_join(out, "model.safetensors");
    int there = mp && cli_file_exists(mp);
    free(mp);
    if (there && !force) { fprintf(stderr, "bitnet: export: %s already holds a model; pass --force to overwrite it\n", out); return 1; }
    bitnet_status st = bitnet_export_packed(in, out, force ? BITNET_EXPORT_ALLOW_FULL_PRECISION : 0);
    if (st == BITNET_ERR_ARG) { fprintf(stderr, "bitnet: export: %s; pass --force to do it anyway\n", bitnet_last_error()); return 1; }
    if (st) return cli_fail("export");
    char *tp = cli_path_join(out, "tokenizer.json"), *sp = cli_path_join(out, "tokenizer.model");
    int tok = (tp && cli_file_exists(tp)) || (sp && cli_file_exists(sp));
    free(tp); free(sp);
    fprintf(stderr, "wrote packed checkpoint to %s\n", out);
    if (!tok) fprintf(stderr, "note: %s has no tokenizer files, so %s has none either: copy them in before `bitnet run`\n", in, out);
    return 0;
}
