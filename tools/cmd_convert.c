/* cmd_convert.c — `bitnet convert IN OUT [--type tq2_0|tq1_0|i2_s] [--head TYPE] [--force]
 * [--progress]`: OUT.gguf: a model folder or a GGUF file written as a GGUF file with ternary
 * BitLinear weights (exact ternary values and scales) and the embedding / head in --head's type;
 * OUT a folder: a GGUF file written back as a Hugging Face folder in the 2B-4T packed layout
 * (bitnet_convert in the library). A progress line (tensors done, rate, ETA) goes to stderr when
 * it is a terminal, or with --progress. Not: the conversion itself (src/io/gguf_write.c,
 * gguf_hf.c). */
#include "cli.h"
#include "args.h"
#include <unistd.h>

typedef struct { double t0, last; int tty; } progress_state;

/* One progress line: on a terminal rewritten in place (at most every 0.1 s), else a new line
 * at most every second; the last call (done == total) always prints. */
static void on_progress(void *ud, int done, int total) {
    progress_state *ps = ud;
    double now = cli_time(), el = now - ps->t0;
    if (done < total && now - ps->last < (ps->tty ? 0.1 : 1.0)) return;
    ps->last = now;
    double rate = el > 0 ? done / el : 0, eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "%sconvert: %d/%d tensors (%3.0f%%), %.1f tensors/s, ETA %.0f s%s", ps->tty ? "\r" : "", done, total,
            100.0 * done / total, rate, eta, ps->tty && done < total ? "   " : "\n");
}

int cmd_convert(int argc, char **argv) {
    const char *type = "i2_s", *head = NULL;
    int force = 0, progress = 0;
    const arg_opt opts[] = {
        OPT_CHOICE('t', "type|outtype", &type, "tq2_0|tq1_0|i2_s", "ternary tensor type of a .gguf output"),
        OPT_CHOICE(0, "head", &head, "f32|f16|bf16|q8_0|q6_k|q4_0", "type of token_embd / output in a .gguf output (default: the source's)"),
        OPT_FLAG('f', "force", &force, "overwrite OUT (or the files in the OUT folder) if it exists"),
        OPT_FLAG(0, "progress", &progress, "print progress lines even when stderr is not a terminal"),
        OPT_END,
    };
    args_spec spec = {"convert",
        "usage: bitnet convert IN OUT.gguf [--type tq2_0|tq1_0|i2_s] [--head TYPE] [--force] [--progress]\n"
        "       bitnet convert IN.gguf OUTDIR [--force] [--progress]\n"
        "  IN: a model folder (2B-4T packed or master, 1bitLLM) or a .gguf file\n"
        "  tq2_0 / tq1_0 load in llama.cpp; i2_s in bitnet.cpp (x86 layout); all load here\n"
        "  --head q8_0|q6_k|q4_0 quantize the embedding / output head (lossy; f32/f16/bf16 keep it)\n"
        "  OUTDIR: written in the Hugging Face 2B-4T packed layout (config.json, model.safetensors,\n"
        "          tokenizer.json or tokenizer.model, tokenizer_config.json)\n",
        {opts}, {"options"}, 2};
    const char *pos[2]; int npos = 0;
    int r = args_parse(&spec, argc, argv, pos, &npos);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (npos != 2) return args_error(&spec, "need IN and OUT"), 2;
    size_t n = strlen(pos[1]);
    int gguf_out = n >= 5 && !strcmp(pos[1] + n - 5, ".gguf");
    if (!gguf_out && head) return args_error(&spec, "--head applies to a .gguf output (OUT is '%s')", pos[1]), 2;
    double t0 = cli_time();
    progress_state ps = {t0, 0, isatty(2)};
    bitnet_convert_params p = bitnet_convert_default_params();
    p.type = type; p.head = head; p.flags = force ? BITNET_CONVERT_FORCE : 0;
    if (ps.tty || progress) { p.progress = on_progress; p.progress_ud = &ps; }
    if (bitnet_convert(pos[0], pos[1], &p)) return cli_fail("convert");
    if (gguf_out) fprintf(stderr, "wrote %s (%s, head %s) in %.2f s\n", pos[1], type, head ? head : "as the source", cli_time() - t0);
    else fprintf(stderr, "wrote the folder %s in %.2f s\n", pos[1], cli_time() - t0);
    return 0;
}
