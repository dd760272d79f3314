/* cmd_convert.c — `bitnet convert IN OUT.gguf --type tq2_0|tq1_0|i2_s [--force]`: write a model
 * folder or a GGUF file as a GGUF file with ternary BitLinear weights (bitnet_convert_gguf in the
 * library; exact ternary values and scales). Not: GGUF -> HF folder, quantized heads. */
#include "cli.h"
#include "args.h"

int cmd_convert(int argc, char **argv) {
    const char *type = "i2_s";
    int force = 0;
    const arg_opt opts[] = {
        OPT_CHOICE('t', "type|outtype", &type, "tq2_0|tq1_0|i2_s", "ternary tensor type of the output"),
        OPT_FLAG('f', "force", &force, "overwrite OUT if it exists"),
        OPT_END,
    };
    args_spec spec = {"convert",
        "usage: bitnet convert IN OUT.gguf [--type tq2_0|tq1_0|i2_s] [--force]\n"
        "  IN: a model folder (2B-4T packed or master, 1bitLLM) or a .gguf file\n"
        "  tq2_0 / tq1_0 load in llama.cpp; i2_s in bitnet.cpp (x86 layout); all load here\n",
        {opts}, {"options"}, 2};
    const char *pos[2]; int npos = 0;
    int r = args_parse(&spec, argc, argv, pos, &npos);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (npos != 2) return args_error(&spec, "need IN and OUT.gguf"), 2;
    size_t n = strlen(pos[1]);
    if (n < 5 || strcmp(pos[1] + n - 5, ".gguf")) return args_error(&spec, "OUT must end in .gguf (got '%s')", pos[1]), 2;
    double t0 = cli_time();
    if (bitnet_convert_gguf(pos[0], pos[1], type, force ? BITNET_CONVERT_FORCE : 0)) return cli_fail("convert");
    fprintf(stderr, "wrote %s (%s) in %.2f s\n", pos[1], type, cli_time() - t0);
    return 0;
}
