/* cmd_run.c — `bitnet run`: generate from prompt ids (--ids) or text (-p / -f), streaming the
 * continuation to stdout; prompt and generation speed on stderr. */
#include "cli.h"
#include "gen.h"
#include <errno.h>

static void usage_run(void) {
    printf("usage: bitnet run -m MODEL_DIR (-p PROMPT | -f FILE | --ids 1,2,3) [options]\n"
           "  -n N               tokens to generate (default 128; stops early at EOS/EOT)\n"
           "  -c N               context length (default: model max, at most 4096)\n"
           "  -t N               threads (default: the physical cores)\n"
           "  --print-ids        print generated ids space-separated on one line (no text)\n"
           "  --no-bos           do not prepend BOS to a text prompt\n"
           "  --ignore-eos       keep generating past EOS/EOT\n");
    gen_usage_sampling();
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL, *ids_s = NULL;
    int n_gen = 128, threads = 0, n_ctx = 0, print_ids = 0, no_bos = 0, ignore_eos = 0;
    gen_sampling so;
    gen_sampling_default(&so, 0.8f);
    for (int i = 1; i < argc; i++) {
        int r = gen_parse_sampling(argc, argv, &i, &so);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "-m") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) prompt = argv[++i];
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_s = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) { if (!cli_int("-n", argv[++i], 0, 1 << 24, &n_gen)) return 2; }
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) { if (!cli_int("-t", argv[++i], 1, 512, &threads)) return 2; }
        else if (!strcmp(argv[i], "-c") && i + 1 < argc) { if (!cli_int("-c", argv[++i], 1, 1 << 24, &n_ctx)) return 2; }
        else if (!strcmp(argv[i], "--print-ids")) print_ids = 1;
        else if (!strcmp(argv[i], "--no-bos")) no_bos = 1;
        else if (!strcmp(argv[i], "--ignore-eos")) ignore_eos = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage_run(); return 0; }
        else { fprintf(stderr, "bitnet run: unknown or incomplete option '%s' (see bitnet run -h)\n", argv[i]); return 2; }
    }
    if (!model || (!!prompt + !!file + !!ids_s) != 1) {
        fprintf(stderr, "bitnet run: need -m MODEL_DIR and exactly one of -p PROMPT, -f FILE, --ids LIST\n");
        return 2;
    }
    gen_session g;
    if (gen_open(&g, model, n_ctx, threads, &so, !ids_s)) return 1;
    int rc = 1;
    int32_t *ids = NULL; int n = 0;
    char *text = NULL;
    if (ids_s) {
        n = cli_parse_ids(ids_s, &ids);
        if (n <= 0) { fprintf(stderr, "bitnet run: --ids must be a comma-separated list of token ids\n"); goto done; }
    } else {
        size_t len = 0;
        if (file) {
            FILE *f = fopen(file, "rb");
            if (!f) { fprintf(stderr, "bitnet run: %s: %s\n", file, strerror(errno)); goto done; }
            size_t cap = 1 << 16; text = malloc(cap);
            size_t r;
            while (text && (r = fread(text + len, 1, cap - len, f)) > 0) { len += r; if (len == cap) { cap *= 2; char *t2 = realloc(text, cap); if (!t2) { free(text); text = NULL; } else text = t2; } }
            fclose(f);
            if (!text) { fprintf(stderr, "bitnet run: out of memory reading %s\n", file); goto done; }
        } else { len = strlen(prompt); text = strdup(prompt); }
        if (bitnet_tokenizer_encode(g.tok, text, len, !no_bos, &ids, &n)) { rc = cli_fail("prompt"); goto done; }
        if (n == 0) { fprintf(stderr, "bitnet run: the prompt is empty\n"); goto done; }
        fputs(text, stdout); fflush(stdout);
    }
    if (n > g.n_ctx) {
        fprintf(stderr, "bitnet run: the prompt has %d tokens but the context holds %d (use -c, or a shorter prompt)\n", n, g.n_ctx);
        goto done;
    }
    gen_stats st;
    if (gen_generate(&g, ids, n, n_gen, ignore_eos, (print_ids || !g.tok) ? GEN_OUT_IDS : GEN_OUT_TEXT, NULL, &st)) goto done;
    printf("\n");
    fflush(stdout);
    gen_report(&st);
    rc = 0;
done:
    free(ids); free(text);
    gen_close(&g);
    return rc;
}
