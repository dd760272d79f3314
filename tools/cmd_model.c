/* cmd_model.c — `bitnet logits` and `bitnet info`: one forward pass to a file; model facts. */
#include "cli.h"
#include "args.h"

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *out = NULL, *device = NULL, *kv = "f32";
    int decode = 0, threads = 1;
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "DIR", "model folder"),
        OPT_STR(0, "ids", &ids_s, "1,2,3", "token ids to evaluate"),
        OPT_STR('o', "output", &out, "OUT.f32", "where to write the logits"),
        OPT_FLAG(0, "decode", &decode, "feed the ids one at a time through the KV cache"),
        OPT_INT('t', "threads", 1, 512, &threads, "N", "threads"),
        OPT_STR(0, "device", &device, "cpu|cuda|cuda:N", "where the model runs (default cpu)"),
        OPT_CHOICE(0, "kv", &kv, "f16|f32", "KV cache storage (default f32: reference logits, nothing rounded)"),
        OPT_END,
    };
    args_spec spec = {"logits",
        "usage: bitnet logits -m MODEL_DIR --ids 1,2,3 -o OUT.f32 [--decode] [-t N] [--device D] [--kv f16|f32]\n"
        "  writes float32 little-endian logits [n_ids, vocab] of one forward over the ids\n",
        {opts}, {"options"}, 0};
    int r = args_parse(&spec, argc, argv, NULL, NULL);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (!model || !ids_s || !out) return args_error(&spec, "need -m MODEL_DIR --ids LIST -o OUT.f32"), 2;
    int32_t *ids = NULL;
    int n = cli_parse_ids(ids_s, &ids);
    if (n <= 0) { fprintf(stderr, "bitnet logits: --ids must be a comma-separated list of token ids\n"); free(ids); return 2; }
    bitnet_model *m = NULL; bitnet_ctx *c = NULL;
    int rc = 1;
    float *lg = NULL;
    FILE *f = NULL;
    if (cli_load_model_on(model, device, &m)) { rc = cli_fail("cannot load the model"); goto done; }
    bitnet_model_info info; bitnet_model_get_info(m, &info);
    bitnet_ctx_params p = {.n_ctx = n < info.max_seq_len ? (n > 0 ? n : 1) : info.max_seq_len, .n_threads = threads,
                         .kv_type = !strcmp(kv, "f16") ? BITNET_KV_F16 : BITNET_KV_F32};
    if (n > info.max_seq_len) { fprintf(stderr, "bitnet logits: %d ids exceed the model's context %d\n", n, info.max_seq_len); goto done; }
    if (bitnet_ctx_new(m, &p, &c)) { rc = cli_fail("cannot create the context"); goto done; }
    lg = malloc((size_t)n * info.vocab_size * sizeof(float));
    if (!lg) { fprintf(stderr, "bitnet logits: out of memory\n"); goto done; }
    if (decode) {
        for (int i = 0; i < n; i++)
            if (bitnet_ctx_eval(c, ids + i, 1, lg + (size_t)i * info.vocab_size, 0)) { rc = cli_fail("--ids"); goto done; }
    } else if (bitnet_ctx_eval(c, ids, n, lg, 1)) { rc = cli_fail("--ids"); goto done; }
    f = fopen(out, "wb");
    if (!f || fwrite(lg, sizeof(float), (size_t)n * info.vocab_size, f) != (size_t)n * info.vocab_size) {
        fprintf(stderr, "bitnet logits: %s: cannot write\n", out); goto done; }
    if (fclose(f)) { f = NULL; fprintf(stderr, "bitnet logits: %s: cannot write\n", out); goto done; }
    f = NULL;
    rc = 0;
done:
    if (f) fclose(f);
    free(lg); free(ids);
    bitnet_ctx_free(c); bitnet_model_free(m);
    return rc;
}

/* `bitnet info --devices`: one line per device of bitnet_devices. */
static int list_devices(void) {
    bitnet_device_info d[17];
    int n = bitnet_devices(d, 17);
    for (int i = 0; i < n && i < 17; i++) printf("%-8s %s%s\n", d[i].name, d[i].usable ? "" : "not usable: ", d[i].desc);
    return 0;
}

int cmd_info(int argc, char **argv) {
    const char *model = NULL, *device = NULL;
    int devices = 0;
    const arg_opt opts[] = {OPT_STR('m', "model", &model, "DIR", "model folder"),
                            OPT_FLAG(0, "devices", &devices, "list the devices models can run on (cpu, cuda:N)"),
                            OPT_STR(0, "device", &device, "cpu|cuda|cuda:N", "load the model there (default cpu)"), OPT_END};
    args_spec spec = {"info", "usage: bitnet info -m MODEL_DIR [--device D]\n       bitnet info --devices\n"
                      "  prints the model's architecture, sizes and memory, or the devices\n", {opts}, {"options"}, 0};
    int r = args_parse(&spec, argc, argv, NULL, NULL);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (devices && !model) return list_devices();
    if (!model) return args_error(&spec, "need -m MODEL_DIR (or --devices)"), 2;
    bitnet_model *m = NULL;
    if (cli_load_model_on(model, device, &m)) return cli_fail("cannot load the model");
    bitnet_model_info i; bitnet_model_get_info(m, &i);
    printf("model:              %s\n", model);
    printf("architecture:       %s (%s FFN, %s)\n", i.arch, i.act ? "silu" : "relu2", i.tied_embeddings ? "tied embeddings" : "separate lm_head");
    printf("weights on disk:    %s\n", i.weight_format);
    printf("layers:             %d\n", i.n_layers);
    printf("hidden / ffn:       %d / %d\n", i.hidden_size, i.intermediate_size);
    printf("heads / kv heads:   %d / %d (head_dim %d)\n", i.n_heads, i.n_kv_heads, i.head_dim);
    printf("vocab:              %d\n", i.vocab_size);
    printf("context:            %d (rope theta %g, norm eps %g)\n", i.max_seq_len, i.rope_theta, i.norm_eps);
    printf("bos / eos:          %d / %d\n", i.bos_id, i.eos_id);
    printf("parameters:         %lld (%.2f M)\n", (long long)i.n_params, i.n_params / 1e6);
    printf("weights in memory:  %zu bytes (%.1f MiB): ternary %.1f MiB (%.2f bits/weight), float %.1f MiB\n",
           i.weight_bytes, i.weight_bytes / 1048576.0, i.ternary_bytes / 1048576.0,
           i.n_ternary ? 8.0 * i.ternary_bytes / (double)i.n_ternary : 0.0,
           (i.weight_bytes - i.ternary_bytes) / 1048576.0);
    printf("kernels:            %s\n", i.isa);
    printf("device:             %s\n", device && *device ? device : "cpu");
    printf("peak RSS:           %.1f MiB\n", cli_peak_rss() / 1048576.0);
    bitnet_model_free(m);
    if (devices) { printf("devices:\n"); list_devices(); }
    return 0;
}
