/* cmd_tokenizer_train.c — `bitnet tokenizer-train`: train a byte-level BPE (Llama 3 regex) on
 * text files and write tokenizer.json + tokenizer_config.json (2B-4T chat template) and, when
 * the folder has none, a starter model config.json (vocab size and bos/eos ids filled in). */
#include "cli.h"
#include "args.h"
#include "bitnet_train.h"
#include <errno.h>
#include <cjson/cJSON.h>
#include <time.h>
#include <unistd.h>

/* A starter config.json for `bitnet train --config`: the bundled model's shape (4.7M
 * parameters with a 2k vocabulary) with this tokenizer's vocabulary size and bos/eos ids. */
static int write_starter_config(const char *dir, const char *tok_path, const char *bos, const char *eos) {
    char *cp = cli_path_join(dir, "config.json");
    if (!cp) return cli_fail("config.json");
    if (cli_file_exists(cp)) { fprintf(stderr, "note: %s exists; not writing a starter config\n", cp); free(cp); return 0; }
    bitnet_tokenizer *tk;
    if (bitnet_tokenizer_load(tok_path, &tk)) { free(cp); return cli_fail("tokenizer-train: reading back the tokenizer"); }
    int V = bitnet_tokenizer_vocab_size(tk);
    int b = bos && *bos ? bitnet_tokenizer_token_id(tk, bos) : -1, e = eos && *eos ? bitnet_tokenizer_token_id(tk, eos) : -1;
    bitnet_tokenizer_free(tk);
    cJSON *r = cJSON_CreateObject();
    cJSON *ar = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(ar, cJSON_CreateString("BitNetForCausalLM"));
    cJSON_AddStringToObject(r, "model_type", "bitnet");
    cJSON_AddNumberToObject(r, "vocab_size", V);
    cJSON_AddNumberToObject(r, "hidden_size", 256);
    cJSON_AddNumberToObject(r, "intermediate_size", 688);
    cJSON_AddNumberToObject(r, "num_hidden_layers", 6);
    cJSON_AddNumberToObject(r, "num_attention_heads", 8);
    cJSON_AddNumberToObject(r, "num_key_value_heads", 2);
    cJSON_AddNumberToObject(r, "max_position_embeddings", 512);
    cJSON_AddNumberToObject(r, "rope_theta", 10000);
    cJSON_AddNumberToObject(r, "rms_norm_eps", 1e-5);
    cJSON_AddStringToObject(r, "hidden_act", "relu2");
    cJSON_AddBoolToObject(r, "tie_word_embeddings", 1);
    if (b >= 0) cJSON_AddNumberToObject(r, "bos_token_id", b);
    if (e >= 0) cJSON_AddNumberToObject(r, "eos_token_id", e);
    char *js = cJSON_Print(r);
    cJSON_Delete(r);
    int rc = 0;
    if (!js || bitnet_write_file_atomic(cp, js, strlen(js))) rc = cli_fail("config.json");
    else fprintf(stderr, "tokenizer-train: wrote a starter %s (vocab_size %d; edit the shape, see bitnet train -h)\n", cp, V);
    free(js); free(cp);
    return rc;
}

static double t_start;
static void progress(void *ud, int phase, double done, double total) {
    (void)ud;
    double el = cli_time() - t_start;
    double rate = el > 0 ? done / el : 0, eta = rate > 0 ? (total - done) / rate : 0;
    if (phase == 0) fprintf(stderr, "\rcounting words: %5.1f%% %.1f MB/s ETA %.0fs   ", total ? 100 * done / total : 100, rate / 1e6, eta);
    else fprintf(stderr, "\rmerges: %.0f/%.0f  %.0f merges/s   ", done, total, el > 0 ? done / el : 0);
    if (done >= total) fputc('\n', stderr);
}

typedef struct { const char *v[64]; int n; } str_list;
/* --special TOK: appended to the list (up to 64; more are ignored, as before). */
static int add_special(void *dst, const char *value, char *err, size_t errlen) {
    str_list *l = dst;
    (void)err; (void)errlen;
    if (l->n < 64) l->v[l->n++] = value;
    return 0;
}

int cmd_tokenizer_train(int argc, char **argv) {
    int vocab = 0;
    const char *out = NULL, *bos = NULL;
    str_list sp = {{0}, 0};
    const char **specials = sp.v;
    const arg_opt opts[] = {
        OPT_INT(0, "vocab", 257, 1 << 22, &vocab, "N", "vocabulary size: 256 bytes + merges + specials (no default: required)"),
        OPT_FUNC(0, "special", add_special, &sp, "TOK", "a special token (repeat; default: the five Llama 3 ones above)"),
        OPT_STR(0, "bos", &bos, "TOK", "the BOS token (default <|begin_of_text|> when it is a special)"),
        OPT_STR('o', NULL, &out, "FILE", "tokenizer.json to write (required)"),
        OPT_END,
    };
    args_spec spec = {"tokenizer-train",
        "usage: bitnet tokenizer-train --vocab N [--special TOK ...] [--bos TOK] IN.txt... -o tokenizer.json\n"
        "  byte-level BPE with the Llama 3 pre-tokenizer; N counts bytes, merges and specials.\n"
        "  Default specials: <|begin_of_text|> <|end_of_text|> <|start_header_id|> <|end_header_id|> <|eot_id|>.\n"
        "  Also writes tokenizer_config.json (chat template) next to the output, and a starter\n"
        "  config.json for `bitnet train --config` when that folder has none (keys: bitnet train -h).\n",
        {opts}, {"options"}, 256};
    const char *files[256]; int nf = 0;
    int r = args_parse(&spec, argc, argv, files, &nf);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    int ns = sp.n;
    if (!vocab || !out || !nf) { fprintf(stderr, "bitnet tokenizer-train: need --vocab N, input files and -o tokenizer.json\n"); return 2; }
    if (!ns) {
        static const char *def[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
        for (int i = 0; i < 5; i++) specials[ns++] = def[i];
    }
    if (!bos) for (int i = 0; i < ns; i++) if (!strcmp(specials[i], "<|begin_of_text|>")) bos = specials[i];
    /* the output folder must exist and be writable before minutes of training, not after */
    const char *slash = strrchr(out, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - out) : 1, slash ? out : ".");
    if (!*dir) snprintf(dir, sizeof dir, "/");
    if (cli_is_dir(out)) { fprintf(stderr, "bitnet tokenizer-train: -o %s is a folder; give the file to write, e.g. %s/tokenizer.json\n", out, out); return 2; }
    if (!cli_is_dir(dir)) { fprintf(stderr, "bitnet tokenizer-train: output folder %s does not exist (create it first)\n", dir); return 1; }
    if (access(dir, W_OK) != 0) { fprintf(stderr, "bitnet tokenizer-train: output folder %s is not writable\n", dir); return 1; }
    char *texts[256]; size_t lens[256];
    for (int i = 0; i < nf; i++) {
        if (cli_read_file(files[i], &texts[i], &lens[i])) {
            fprintf(stderr, "bitnet: tokenizer-train: %s: %s\n", files[i], strerror(errno));
            for (int k = 0; k < i; k++) free(texts[k]);
            return 1;
        }
    }
    t_start = cli_time();
    bitnet_bpe_params p = bitnet_bpe_default_params();
    p.vocab_size = vocab; p.specials = (const char *const *)specials; p.n_specials = ns; p.bos = bos; p.progress = progress;
    int nm = 0;
    bitnet_status s = bitnet_bpe_train((const char *const *)texts, lens, nf, &p, out, &nm);
    size_t total = 0;
    for (int i = 0; i < nf; i++) { total += lens[i]; free(texts[i]); }
    if (s) return cli_fail("tokenizer-train");
    double el = cli_time() - t_start;
    fprintf(stderr, "tokenizer-train: %d merges, vocab %d, %.1f MB in %.2fs (%.2f MB/s) -> %s\n",
            nm, 256 + nm + ns, total / 1e6, el, el > 0 ? total / 1e6 / el : 0, out);
    /* tokenizer_config.json beside it */
    char *cfgp = cli_path_join(dir, "tokenizer_config.json");
    const char *eos = "<|eot_id|>";
    int has_eot = 0;
    for (int i = 0; i < ns; i++) if (!strcmp(specials[i], eos)) has_eot = 1;
    if (!has_eot) eos = ns ? specials[ns - 1] : "";
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\n  \"bos_token\": \"%s\",\n  \"eos_token\": \"%s\",\n"
             "  \"chat_template\": \"{%% for message in messages %%}{%% if loop.first %%}{{ bos_token }}{%% endif %%}{{ message['role'] | capitalize }}: {{ message['content'] }}<|eot_id|>{%% endfor %%}{%% if add_generation_prompt %%}Assistant: {%% endif %%}\",\n"
             "  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"model_max_length\": 4096\n}\n", bos ? bos : "", eos);
    if (!cfgp || bitnet_write_file_atomic(cfgp, buf, strlen(buf))) { free(cfgp); return cli_fail("tokenizer_config.json"); }
    free(cfgp);
    return write_starter_config(dir, out, bos, eos);
}
