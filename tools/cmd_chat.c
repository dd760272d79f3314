/* cmd_chat.c — `bitnet chat`: interactive multi-turn chat on a terminal or from a pipe, keeping
 * the KV cache across turns (only each new turn is evaluated). Chat formats: "bitnet" (2B-4T:
 * `System: ...<|eot_id|>User: ...<|eot_id|>Assistant: `), "llama3" (header tokens) and "plain";
 * picked from tokenizer_config.json's chat_template, or --chat-format. Ctrl-C stops the
 * current reply, not the program. Lines "/clear" (new conversation) and "/exit" are commands. */
#include "gen.h"
#include <unistd.h>
#include <errno.h>

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) { (void)sig; g_stop = 1; }

enum { FMT_BITNET, FMT_LLAMA3, FMT_PLAIN };

static int detect_format(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return FMT_PLAIN;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (strstr(buf, "<|start_header_id|>")) return FMT_LLAMA3;
    if (strstr(buf, "Assistant: ") && strstr(buf, "<|eot_id|>")) return FMT_BITNET;
    return FMT_PLAIN;
}

/* Append the text of one turn (role user/system) and the assistant prefix when asked. */
static void fmt_turn(int fmt, char **buf, size_t *len, const char *role, const char *msg, int add_assistant) {
    const char *R = !strcmp(role, "system") ? "System" : "User";
    size_t need = strlen(msg) + 128;
    char *b = realloc(*buf, *len + need + 1);
    if (!b) return;
    *buf = b;
    int w = 0;
    if (fmt == FMT_BITNET) w = snprintf(b + *len, need, "%s: %s<|eot_id|>%s", R, msg, add_assistant ? "Assistant: " : "");
    else if (fmt == FMT_LLAMA3)
        w = snprintf(b + *len, need, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>%s", role, msg,
                     add_assistant ? "<|start_header_id|>assistant<|end_header_id|>\n\n" : "");
    else w = snprintf(b + *len, need, "%s: %s\n%s", R, msg, add_assistant ? "Assistant:" : "");
    if (w > 0) *len += (size_t)w;
}

int cmd_chat(int argc, char **argv) {
    const char *model = NULL, *sys = NULL, *fmt_s = NULL;
    int threads = 1, n_ctx = 0, n_gen = 512;
    gen_sampling so;
    gen_sampling_default(&so, 0.8f);
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "DIR", "model folder"),
        OPT_STR('s', "system-prompt", &sys, "TEXT", "system prompt"),
        OPT_CHOICE(0, "chat-format", &fmt_s, "bitnet|llama3|plain", "chat format (default: from tokenizer_config.json)"),
        OPT_INT('t', "threads", 1, 512, &threads, "N", "threads"),
        OPT_INT('c', "ctx-size", 1, 1 << 24, &n_ctx, "N", "context length (default: the model's, at most 4096)"),
        OPT_INT('n', "n-predict|predict", 1, 1 << 24, &n_gen, "N", "most tokens per reply"),
        OPT_END,
    };
    args_spec spec = {"chat",
        "usage: bitnet chat -m MODEL_DIR [-s SYSTEM_PROMPT] [--chat-format bitnet|llama3|plain] [-t N] [-c N] [-n MAX_REPLY]\n"
        "  reads one user message per line from stdin; /clear starts over, /exit quits\n",
        {opts, gen_sampling_options(&so)}, {"options", "sampling"}, 0};
    int r = args_parse(&spec, argc, argv, NULL, NULL);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (!model) { fprintf(stderr, "bitnet chat: need -m MODEL_DIR\n"); return 2; }
    int fmt = detect_format(model);
    if (fmt_s) {
        if (!strcmp(fmt_s, "bitnet")) fmt = FMT_BITNET;
        else if (!strcmp(fmt_s, "llama3")) fmt = FMT_LLAMA3;
        else if (!strcmp(fmt_s, "plain")) fmt = FMT_PLAIN;
        else { fprintf(stderr, "bitnet chat: unknown --chat-format '%s' (bitnet, llama3, plain)\n", fmt_s); return 2; }
    }
    gen_session g;
    if (gen_open(&g, model, n_ctx, threads, &so, 1)) return 1;
    int eot = bitnet_tokenizer_eot(g.tok);
    if (eot < 0) eot = bitnet_tokenizer_eos(g.tok);
    int tty = isatty(0);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);   /* no SA_RESTART: Ctrl-C at the prompt interrupts getline */
    char *line = NULL; size_t cap = 0;
    int first = 1, rc = 0;
    for (;;) {
        if (tty) { fputs("> ", stderr); fflush(stderr); }
        g_stop = 0;
        errno = 0;
        ssize_t r = getline(&line, &cap, stdin);
        if (r < 0) {
            if (errno == EINTR && g_stop) { clearerr(stdin); fputs("\n(Ctrl-C: type /exit or Ctrl-D to quit)\n", stderr); continue; }
            break;
        }
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r')) line[--r] = 0;
        if (r == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/clear")) { bitnet_ctx_reset(g.ctx); first = 1; fputs("(new conversation)\n", stderr); continue; }
        char *turn = NULL; size_t len = 0;
        turn = malloc(1); if (!turn) { rc = 1; break; } turn[0] = 0;
        if (first && sys) fmt_turn(fmt, &turn, &len, "system", sys, 0);
        fmt_turn(fmt, &turn, &len, "user", line, 1);
        int32_t *ids = NULL; int n = 0;
        if (bitnet_tokenizer_encode(g.tok, turn, len, first, &ids, &n)) { free(turn); rc = cli_fail("message"); break; }
        free(turn);
        gen_stats st;
        int pos_before = bitnet_ctx_pos(g.ctx);
        if (gen_generate(&g, ids, n, n_gen, 0, GEN_OUT_TEXT, &g_stop, &st)) {
            free(ids);
            bitnet_ctx_truncate(g.ctx, pos_before);
            if (st.stopped_by == 3) { fputs("(context full: /clear starts a new conversation)\n", stderr); continue; }
            rc = 1; break;
        }
        free(ids);
        fputs("\n", stdout); fflush(stdout);
        /* close the assistant turn in the cache: the sampled-but-unfed token, then EOT if needed */
        int32_t tail[2]; int nt = 0;
        if (st.last_id >= 0 && st.stopped_by != 2) tail[nt++] = st.last_id;
        if (st.stopped_by != 1 && eot >= 0) tail[nt++] = eot;
        if (nt && bitnet_ctx_pos(g.ctx) + nt <= g.n_ctx) bitnet_ctx_eval(g.ctx, tail, nt, NULL, 0);
        if (st.stopped_by == 2) fputs("(stopped)\n", stderr);
        gen_report(&st);
        first = 0;
    }
    free(line);
    gen_close(&g);
    return rc;
}
