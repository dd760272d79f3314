/* cmd_export.c — `bitnet export --packed IN_DIR OUT_DIR`: write a 2B-4T packed inference
 * checkpoint (uint8 ternary + bf16 weight_scale) from master weights (src/train_export.c),
 * with IN_DIR's tokenizer files. Refuses a full-precision (--no-quant) IN_DIR and an OUT_DIR
 * that already holds a model unless --force. */
#include "cli.h"
#include "args.h"
#include "bitnet_train.h"

int cmd_export(int argc, char **argv) {
    int packed = 0, force = 0;
    const arg_opt opts[] = {
        OPT_FLAG(0, "packed", &packed, "write the 2B-4T packed layout (uint8 ternary + bf16 weight_scale; required)"),
        OPT_FLAG(0, "force", &force, "ternarize a full-precision (--no-quant) checkpoint anyway, and overwrite OUT_DIR's model"),
        OPT_END,
    };
    args_spec spec = {"export",
        "usage: bitnet export --packed [--force] IN_DIR OUT_DIR\n"
        "  IN_DIR: a training output or HF master checkpoint (config.json + float model.safetensors);\n"
        "  its tokenizer files (tokenizer.json, tokenizer_config.json, ...) are copied to OUT_DIR.\n",
        {opts}, {"options"}, 2};
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    int r = args_parse(&spec, argc, argv, pos, &npos);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    const char *in = pos[0], *out = pos[1];
    if (!packed || npos != 2) { args_usage(&spec, stderr); return 2; }
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
