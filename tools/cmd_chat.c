/* cmd_chat.c — `bitnet chat`: interactive multi-turn chat on a terminal or from a pipe, keeping
 * the KV cache across turns (only each new turn is evaluated). The chat format is the library's
 * (bitnet_chat_template_detect from tokenizer_config.json's chat_template, or --chat-format;
 * bitnet_chat_apply renders each turn). Replies are capped at half the context unless -n says
 * otherwise; when a new turn and its reply would not fit, the oldest turns are dropped (the
 * system prompt is kept) and the rest re-evaluated, with a note on stderr; a message that cannot
 * fit at all is refused. Ctrl-C stops the current reply, not the program. Lines "/clear" (new
 * conversation) and "/exit" are commands. Not: a server; one conversation. */
#include "gen.h"
#include <unistd.h>
#include <errno.h>

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) { (void)sig; g_stop = 1; }

/* Render msgs[n] (+ the assistant prefix) and encode it with flags; prints errors. */
static int encode_msgs(gen_session *g, bitnet_chat_template fmt, const bitnet_chat_message *m, int n, int add_assistant,
                       int flags, int32_t **ids, int *n_ids) {
    char *text = NULL;
    if (bitnet_chat_apply(fmt, m, n, add_assistant, &text)) return cli_fail("chat template");
    bitnet_status st = bitnet_tokenizer_encode_ex(g->tok, text, strlen(text), flags, ids, n_ids);
    free(text);
    return st ? cli_fail("message") : 0;
}

/* Drop the oldest turns (turn[0..k)) so that `need` more tokens fit, keeping the head (BOS +
 * system prompt, hist[0..head)); the remaining turns are re-evaluated at their new positions.
 * Returns the number of turns dropped, or -1 on an error (printed). */
static int drop_oldest(gen_session *g, int head, int *turn, int *n_turns, int need) {
    int k = 0;
    while (k < *n_turns && g->n_hist - (turn[k] - head) + need > g->n_ctx) k++;
    if (k == 0) return 0;
    int from = k < *n_turns ? turn[k] : g->n_hist, keep = g->n_hist - from;
    int32_t *rest = malloc((size_t)(keep > 0 ? keep : 1) * sizeof *rest);
    if (!rest) { fprintf(stderr, "bitnet: out of memory\n"); return -1; }
    memcpy(rest, g->hist + from, (size_t)keep * sizeof *rest);
    gen_truncate(g, head);
    int rc = keep ? gen_feed(g, rest, keep, 0, "context") : 0;
    free(rest);
    if (rc) return -1;
    for (int i = k; i < *n_turns; i++) turn[i - k] = turn[i] - (from - head);
    *n_turns -= k;
    return k;
}

int cmd_chat(int argc, char **argv) {
    const char *model = NULL, *sys = NULL, *fmt_s = NULL;
    int threads = 0, n_ctx = 0, n_gen = 0;
    gen_sampling so;
    gen_sampling_default(&so, 0.8f);
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "DIR", "model folder"),
        OPT_STR('s', "system-prompt", &sys, "TEXT", "system prompt"),
        OPT_CHOICE(0, "chat-format", &fmt_s, "bitnet|llama3|plain", "chat format (default: from tokenizer_config.json)"),
        OPT_INT('t', "threads", 1, 512, &threads, "N", "threads (default: the physical cores; a warning beyond the online CPUs)"),
        OPT_INT('c', "ctx-size", 1, 1 << 24, &n_ctx, "N", "context length (default: the model's, at most 4096)"),
        OPT_INT('n', "n-predict|predict", 1, 1 << 24, &n_gen, "N", "most tokens per reply (default: half the context)"),
        OPT_FLAG('v', "verbose", &so.verbose, "print the seed, the threads and the chat format on stderr"),
        OPT_END,
    };
    args_spec spec = {"chat",
        "usage: bitnet chat -m MODEL_DIR [-s SYSTEM_PROMPT] [--chat-format bitnet|llama3|plain] [-t N] [-c N] [-n MAX_REPLY]\n"
        "  reads one user message per line from stdin; /clear starts over, /exit quits; when the conversation\n"
        "  outgrows the context the oldest turns are dropped (the system prompt is kept)\n",
        {opts, gen_sampling_options(&so)}, {"options", "sampling"}, 0};
    int r = args_parse(&spec, argc, argv, NULL, NULL);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (!model) { fprintf(stderr, "bitnet chat: need -m MODEL_DIR\n"); return 2; }
    bitnet_chat_template fmt = BITNET_CHAT_PLAIN;
    if (fmt_s) {
        if (bitnet_chat_template_from_name(fmt_s, &fmt)) { fprintf(stderr, "bitnet chat: --chat-format: %s\n", bitnet_last_error()); return 2; }
    } else if (bitnet_chat_template_detect(model, &fmt)) return cli_fail("chat template");
    gen_session g;
    if (gen_open(&g, model, n_ctx, threads, &so, 1)) return 1;
    if (so.verbose)
        fprintf(stderr, "seed %llu, threads %d, context %d, chat format %s\n", (unsigned long long)bitnet_sampler_seed(g.smp), g.threads,
                g.n_ctx, bitnet_chat_template_name(fmt));
    int eot = bitnet_tokenizer_eot(g.tok);
    if (eot < 0) eot = bitnet_tokenizer_eos(g.tok);
    int max_reply = n_gen > 0 ? n_gen : g.n_ctx / 2;
    int head = 0, n_turns = 0, cap_turns = 0, *turn = NULL; /* hist[0..head): BOS + system; turn[i]: where turn i starts */
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
        if (!strcmp(line, "/clear")) {
            gen_truncate(&g, 0); bitnet_sampler_reset(g.smp); first = 1; head = n_turns = 0;
            fputs("(new conversation)\n", stderr); continue;
        }
        int32_t *ids = NULL; int n = 0;
        if (first) { /* the head: BOS and the system prompt, kept for the whole conversation */
            bitnet_chat_message sm = {"system", sys ? sys : ""};
            if (encode_msgs(&g, fmt, &sm, sys ? 1 : 0, 0, BITNET_TOK_BOS, &ids, &n)) { rc = 1; break; }
            if (n + 2 > g.n_ctx) {
                fprintf(stderr, "bitnet chat: system prompt too long (%d tokens, context %d)\n", n, g.n_ctx);
                free(ids); rc = 1; break;
            }
            for (int i = 0; i < n; i++) bitnet_sampler_accept(g.smp, ids[i]);
            int e = n ? gen_feed(&g, ids, n, 0, "system prompt") : 0;
            free(ids);
            if (e) { rc = 1; break; }
            head = g.n_hist; first = 0;
        }
        bitnet_chat_message um = {"user", line};
        /* the first text after BOS alone starts the text; anything later continues it */
        if (encode_msgs(&g, fmt, &um, 1, 1, head <= 1 && n_turns == 0 && !sys ? 0 : BITNET_TOK_CONTINUE, &ids, &n)) { rc = 1; break; }
        if (head + n + 2 > g.n_ctx) { /* not even a one-token reply (and its end-of-turn) fits */
            fprintf(stderr, "bitnet chat: message too long (%d tokens, context %d)\n", n, g.n_ctx);
            free(ids); continue;
        }
        int reply = max_reply < g.n_ctx - head - n - 2 ? max_reply : g.n_ctx - head - n - 2;
        int dropped = drop_oldest(&g, head, turn, &n_turns, n + reply + 2);
        if (dropped < 0) { free(ids); rc = 1; break; }
        if (dropped)
            fprintf(stderr, "(the conversation outgrew the context of %d tokens: dropped the oldest %d turn%s, kept the system prompt "
                    "(%d tokens) and %d turn%s)\n", g.n_ctx, dropped, dropped == 1 ? "" : "s", head, n_turns, n_turns == 1 ? "" : "s");
        if (n_turns == cap_turns) {
            int *t2 = realloc(turn, (size_t)(cap_turns = cap_turns * 2 + 8) * sizeof *turn);
            if (!t2) { free(ids); fprintf(stderr, "bitnet: out of memory\n"); rc = 1; break; }
            turn = t2;
        }
        turn[n_turns++] = g.n_hist;
        gen_stats st;
        int pos_before = g.n_hist;
        if (gen_generate(&g, ids, n, reply, 0, GEN_OUT_TEXT, &g_stop, &st)) {
            free(ids);
            gen_truncate(&g, pos_before); n_turns--;
            rc = 1; break;
        }
        free(ids);
        fputs("\n", stdout); fflush(stdout);
        /* close the assistant turn in the cache: the sampled-but-unfed token, then EOT if needed */
        int32_t tail[2]; int nt = 0;
        if (st.last_id >= 0 && st.stopped_by != 2) tail[nt++] = st.last_id;
        if (st.stopped_by != 1 && eot >= 0) tail[nt++] = eot;
        if (nt && g.n_hist + nt <= g.n_ctx && gen_feed(&g, tail, nt, 0, "end of turn")) { rc = 1; break; }
        if (st.stopped_by == 2) fputs("(stopped)\n", stderr);
        gen_report(&st);
    }
    free(line); free(turn);
    gen_close(&g);
    return rc;
}
