/* cmd_run.c — `bitnet run`: generate from prompt ids (--ids) or text (-p / -f), streaming the
 * continuation to stdout; prompt and generation speed on stderr. */
#include "cli.h"
#include "gen.h"
#include "args.h"
#include <errno.h>
#include <sys/stat.h>

/* Read the whole of path into a NUL-terminated buffer (*len bytes before the NUL). A folder,
 * an unreadable or an empty file is an error (message printed); returns NULL then. */
static char *read_prompt_file(const char *path, size_t *len) {
    struct stat sb;
    if (stat(path, &sb)) { fprintf(stderr, "bitnet run: -f %s: %s\n", path, strerror(errno)); return NULL; }
    if (!S_ISREG(sb.st_mode)) { fprintf(stderr, "bitnet run: -f %s: not a regular file\n", path); return NULL; }
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "bitnet run: -f %s: %s\n", path, strerror(errno)); return NULL; }
    size_t cap = 1 << 16, n = 0, r;
    char *text = malloc(cap);
    while (text && (r = fread(text + n, 1, cap - 1 - n, f)) > 0) {
        n += r;
        if (n == cap - 1) { char *t2 = realloc(text, cap *= 2); if (!t2) { free(text); text = NULL; } else text = t2; }
    }
    int err = ferror(f);
    fclose(f);
    if (!text) { fprintf(stderr, "bitnet run: out of memory reading %s\n", path); return NULL; }
    if (err) { fprintf(stderr, "bitnet run: -f %s: read error\n", path); free(text); return NULL; }
    if (n == 0) { fprintf(stderr, "bitnet run: -f %s: the file is empty\n", path); free(text); return NULL; }
    text[n] = 0;
    *len = n;
    return text;
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL, *ids_s = NULL;
    int n_gen = 128, threads = 0, n_ctx = 0, print_ids = 0, no_bos = 0, ignore_eos = 0, no_prompt = 0;
    gen_sampling so;
    gen_sampling_default(&so, 0.8f);
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "DIR", "model folder (config.json, model.safetensors, tokenizer)"),
        OPT_STR('p', "prompt", &prompt, "TEXT", "prompt text"),
        OPT_STR('f', "file", &file, "FILE", "read the prompt from FILE"),
        OPT_STR(0, "ids", &ids_s, "1,2,3", "prompt token ids (no tokenizer needed)"),
        OPT_INT('n', "n-predict|predict", -1, 1 << 24, &n_gen, "N", "tokens to generate (-1 = until the context is full; stops early at EOS/EOT)"),
        OPT_INT('c', "ctx-size", 0, 1 << 24, &n_ctx, "N", "context length (0 = the model's, at most 4096; default 0)"),
        OPT_INT('t', "threads", 1, 512, &threads, "N", "threads (default: the physical cores; a warning beyond the online CPUs)"),
        OPT_FLAG(0, "print-ids", &print_ids, "print the generated ids space-separated on one line (no text, no prompt)"),
        OPT_FLAG(0, "no-display-prompt", &no_prompt, "do not echo the prompt before the continuation"),
        OPT_FLAG(0, "no-bos", &no_bos, "do not prepend BOS to a text prompt"),
        OPT_FLAG(0, "ignore-eos", &ignore_eos, "keep generating past EOS/EOT"),
        OPT_FLAG('v', "verbose", &so.verbose, "print the seed and the settings on stderr"),
        OPT_END,
    };
    args_spec spec = {"run",
        "usage: bitnet run -m MODEL_DIR (-p PROMPT | -f FILE | --ids 1,2,3) [options]\n"
        "  streams the prompt and its continuation to stdout; prompt and generation speed on stderr\n",
        {opts, gen_sampling_options(&so)}, {"options", "sampling"}, 0};
    int r = args_parse(&spec, argc, argv, NULL, NULL);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (!model || (!!prompt + !!file + !!ids_s) != 1)
        return args_error(&spec, "need -m MODEL_DIR and exactly one of -p PROMPT, -f FILE, --ids LIST"), 2;
    int32_t *ids = NULL; int n = 0;
    char *text = NULL; size_t len = 0;
    if (ids_s && (n = cli_parse_ids(ids_s, &ids)) <= 0) {
        free(ids);
        return args_error(&spec, "--ids must be a comma-separated list of token ids"), 2;
    }
    if (file && !(text = read_prompt_file(file, &len))) return 1;
    gen_session g;
    if (gen_open(&g, model, n_ctx, threads, &so, !ids_s)) { free(ids); free(text); return 1; }
    int rc = 1;
    if (!ids_s) {
        if (!file) { len = strlen(prompt); text = strdup(prompt); }
        if (!text) { fprintf(stderr, "bitnet run: out of memory\n"); goto done; }
        if (bitnet_tokenizer_encode(g.tok, text, len, !no_bos, &ids, &n)) { rc = cli_fail("prompt"); goto done; }
        if (n == 0) { fprintf(stderr, "bitnet run: the prompt is empty\n"); goto done; }
    }
    for (int i = 0; i < n; i++)
        if (ids[i] >= g.vocab) { fprintf(stderr, "bitnet run: prompt id %d is out of the vocabulary (%d)\n", ids[i], g.vocab); goto done; }
    if (n > g.n_ctx) {
        bitnet_model_info info; bitnet_model_get_info(g.model, &info);
        if (n <= info.max_seq_len)
            fprintf(stderr, "bitnet run: the prompt has %d tokens but the context holds %d (use -c %d, or a shorter prompt)\n", n, g.n_ctx, n);
        else
            fprintf(stderr, "bitnet run: the prompt has %d tokens but the model holds at most %d positions: shorten the prompt\n", n, info.max_seq_len);
        goto done;
    }
    if (so.verbose)
        fprintf(stderr, "seed %llu, temp %g, top-k %d, top-p %g, min-p %g, context %d, threads %d, prompt %d tokens\n",
                (unsigned long long)bitnet_sampler_seed(g.smp), so.sp.temperature, so.sp.top_k, so.sp.top_p, so.sp.min_p, g.n_ctx, g.threads, n);
    /* everything is checked: only now does anything go to stdout */
    int out = (print_ids || !g.tok) ? GEN_OUT_IDS : GEN_OUT_TEXT;
    if (text && out == GEN_OUT_TEXT && !no_prompt) { fwrite(text, 1, len, stdout); fflush(stdout); }
    if (n_gen < 0) n_gen = g.n_ctx;
    gen_stats st;
    if (gen_generate(&g, ids, n, n_gen, ignore_eos, out, NULL, &st)) goto done;
    printf("\n");
    fflush(stdout);
    gen_report(&st);
    rc = 0;
done:
    free(ids); free(text);
    gen_close(&g);
    return rc;
}
