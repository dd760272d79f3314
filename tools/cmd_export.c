/* cmd_export.c — `bitnet export --packed IN_DIR OUT_DIR`: write a 2B-4T packed inference
 * checkpoint (uint8 ternary + bf16 weight_scale) from master weights (src/train_export.c),
 * with IN_DIR's tokenizer files. Refuses a full-precision (--no-quant) IN_DIR and an OUT_DIR
 * that already holds a model unless --force. */
#include "cli.h"
#include "args.h"
#include "bitnet_train.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <unistd.h>

/* Remove the flat temp folder d that this command made (its files, then d). */
static void cli_rm_rf(const char *d) {
    DIR *dp = opendir(d);
    struct dirent *e;
    while (dp && (e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = cli_path_join(d, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    if (dp) closedir(dp);
    rmdir(d);
}

static const char *USAGE =
    "usage: bitnet export --packed [--force] [--merge-lora ADAPTER [--lora-scale S]] IN_DIR OUT_DIR\n"
    "       bitnet export --merge-lora ADAPTER [--lora-scale S] [--force] IN_DIR OUT_DIR\n"
    "  IN_DIR: a training output or HF master checkpoint (config.json + float model.safetensors);\n"
    "  its tokenizer files (tokenizer.json, tokenizer_config.json, ...) are copied to OUT_DIR.\n"
    "  --merge-lora ADAPTER  add the PEFT LoRA adapter (bitnet train --lora-rank output) into IN_DIR's\n"
    "           master weights, W += S * alpha/r * B A (S: --lora-scale, 1); alone it writes the merged float\n"
    "           master to OUT_DIR; with --packed it packs the merged model (re-ternarization then applies)\n"
    "  --force  ternarize a full-precision (--no-quant) checkpoint anyway, and overwrite OUT_DIR's model\n";

int cmd_export(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int packed = 0, force = 0;
    const char *merge = NULL; float lscale = 1.0f;
    const arg_opt opts[] = {
        OPT_FLAG(0, "packed", &packed, "write the 2B-4T packed inference layout"),
        OPT_FLAG(0, "force", &force, "ternarize a full-precision checkpoint anyway; overwrite OUT_DIR's model"),
        OPT_STR(0, "merge-lora", &merge, "ADAPTER_DIR", "merge a LoRA adapter into the master weights first"),
        OPT_FLOAT(0, "lora-scale", -INFINITY, INFINITY, &lscale, "S", "scale of the merged adapter"),
        OPT_END,
    };
    args_spec spec = {.cmd = "export", .usage = USAGE, .tables = {opts}, .titles = {"options"}, .max_pos = 2};
    const char *pos[2]; int npos = 0;
    int r = args_parse(&spec, argc, argv, pos, &npos);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (npos > 0) in = pos[0];
    if (npos > 1) out = pos[1];
    if ((!packed && !merge) || !in || !out) { fputs(USAGE, stderr); return 2; }
    char *mp = cli_path_join(out, "model.safetensors");
    int there = mp && cli_file_exists(mp);
    free(mp);
    if (there && !force) { fprintf(stderr, "bitnet: export: %s already holds a model; pass --force to overwrite it\n", out); return 1; }
    char tmpd[4200] = "";
    if (merge) {   /* merged master: OUT_DIR itself, or a temp folder next to it that --packed reads */
        if (packed) {
            snprintf(tmpd, sizeof tmpd, "%s.merge.XXXXXX", out);
            if (!mkdtemp(tmpd)) { fprintf(stderr, "bitnet: export: cannot create a temp folder %s: %s\n", tmpd, strerror(errno)); return 1; }
        }
        if (bitnet_export_merge_lora(in, merge, lscale, packed ? tmpd : out)) { cli_fail("export --merge-lora"); if (*tmpd) cli_rm_rf(tmpd); return 1; }
        if (!packed) { fprintf(stderr, "wrote the merged master checkpoint to %s\n", out); return 0; }
        in = tmpd;
    }
    bitnet_status st = bitnet_export_packed(in, out, force ? BITNET_EXPORT_ALLOW_FULL_PRECISION : 0);
    if (*tmpd) cli_rm_rf(tmpd);
    if (st == BITNET_ERR_ARG) { fprintf(stderr, "bitnet: export: %s; pass --force to do it anyway\n", bitnet_last_error()); return 1; }
    if (st) return cli_fail("export");
    char *tp = cli_path_join(out, "tokenizer.json"), *sp = cli_path_join(out, "tokenizer.model");
    int tok = (tp && cli_file_exists(tp)) || (sp && cli_file_exists(sp));
    free(tp); free(sp);
    fprintf(stderr, "wrote packed checkpoint to %s\n", out);
    if (!tok) fprintf(stderr, "note: %s has no tokenizer files, so %s has none either: copy them in before `bitnet run`\n", in, out);
    return 0;
}
