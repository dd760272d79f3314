/* cmd_train.c — `bitnet train`: quantization-aware training (or --no-quant full precision) of a
 * BitNet b1.58 model on a uint32 token file, with AdamW, LR schedules, evaluation, checkpoints,
 * --resume, metrics.csv and a hand-drawn loss.svg in OUTDIR. The run's options are stored in the
 * checkpoint (train_options JSON) and reused by --resume; Ctrl-C saves a checkpoint and exits 130
 * (the handler only sets a flag the step loop checks). All numerics are in the library
 * (src/train*.c, src/optim.c, src/data.c); this file parses options, prints and draws. */
#include "cli.h"
#include "args.h"
#include "bitnet_train.h"
#include "train_dist.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/stat.h>

static void usage(void) {
    fprintf(stderr,
        "usage: bitnet train (--init DIR | --config FILE.json | --resume) --data FILE.u32 -o OUTDIR [options]\n"
        "  --init DIR          start from an HF master checkpoint folder (F32/BF16/F16)\n"
        "  --config FILE.json  start from a fresh random model of this config (--seed)\n"
        "  --resume            continue OUTDIR's run from its last checkpoint (bit-exact): the run's\n"
        "                      options are stored in the checkpoint and reused; an option given again\n"
        "                      with a new value is applied with a note, except --batch/--seq/--accum/\n"
        "                      --no-quant, which cannot change within a run (start a new run with\n"
        "                      --init OUTDIR -o NEWDIR); --steps M > the checkpoint's step extends it\n"
        "  --force             start a new run in an OUTDIR that already holds one (overwrites it)\n"
        "  --data FILE.u32     training tokens (uint32 LE; make them with bitnet tokenize-file), read in\n"
        "                      random windows of --seq tokens (seeded by --seed, resumable)\n"
        "  --data FILE.jsonl   chat SFT data: {\"messages\": [{\"role\": ..., \"content\": ...}, ...]} per line,\n"
        "                      rendered with the chat template of the tokenizer's folder, packed; the loss\n"
        "                      counts the assistant turns only (--val FILE.jsonl then too)\n"
        "  --val FILE.u32      validation tokens (read from the start, in order)\n"
        "  --tokenizer DIR|FILE  tokenizer copied into OUTDIR (default: --init DIR, or the --config\n"
        "                      file's folder, when they hold tokenizer.json / tokenizer.model)\n"
        "  --batch B (4) --seq T (128) --steps N (100) --accum K (1)\n"
        "  --lr (1e-3, > 0) --beta1 (0.9) --beta2 (0.95, both in [0, 1)) --eps (1e-8, > 0)\n"
        "  --wd (0.1, >= 0) --clip (1.0, >= 0; 0 = off)\n"
        "  --lr-schedule constant|cosine|two-stage (constant) --warmup STEPS (0)\n"
        "  --eval-every N (0 = at the end only) --eval-batches N (8) --save-every N (0 = at the end)\n"
        "  --device cpu|cuda|cuda:N  train on the GPU (make CUDA=1 builds): same math and checkpoints\n"
        "  --nproc N           data parallel over N GPUs through NCCL: forks N ranks, rank r on GPU r (--device\n"
        "                      cuda); --batch is the global micro-batch (a multiple of N), each rank reads its\n"
        "                      shard, gradients are averaged, rank 0 writes checkpoints and logs; checkpoints\n"
        "                      resume with any N or alone. Or start the ranks yourself (torchrun, mpirun) with\n"
        "                      RANK, WORLD_SIZE, LOCAL_RANK (the GPU) and BITNET_NCCL_ID_FILE (default\n"
        "                      OUTDIR/.nccl-id; a fresh file per run) in the environment\n"
        "  --precision default|fast|parity  GPU rounding: default (attention forward fp32, the goldens'\n"
        "                      bounds), fast (bf16 flash attention and LM head, like autocast; fastest),\n"
        "                      parity (fp32 head and attention, 3-term backward); the CPU ignores it\n"
        "  --seed S (1337) -t THREADS (1) --no-quant (full precision; the checkpoint is labelled\n"
        "                      \"full_precision\" and `bitnet run` refuses it) --dump-grads FILE.safetensors\n"
        "  --stop-after N      run at most N steps now, save, and exit (continue later with --resume)\n"
        "  --dry-run           print the memory plan (weights, gradients, optimizer, adapters, activations) and exit\n"
        "  --eval-first        also evaluate --val before the first step (e.g. the base model's loss)\n"
        "  --lora-rank R       LoRA: train rank-R adapters on the frozen --init base (ternarized once; no\n"
        "                      base gradients or moments); OUTDIR gets PEFT's adapter_model.safetensors +\n"
        "                      adapter_config.json (load with `bitnet run --lora OUTDIR`)\n"
        "  --lora-alpha A (2R) --lora-targets q,k,v,o,gate,up,down|all (q,v) --lora-dropout P (0)\n"
        "  --grad-checkpoint   keep only each layer's input, recompute the layer in backward (less\n"
        "                      activation memory, ~1/3 more compute, the same gradients)\n"
        "  Ctrl-C saves a checkpoint at the end of the current step and exits (continue with --resume).\n"
        "config.json keys (HF names): model_type \"bitnet\", vocab_size (>= the tokenizer's), hidden_size,\n"
        "  intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads (default: heads),\n"
        "  head_dim (default hidden/heads), max_position_embeddings (>= --seq), rope_theta (10000),\n"
        "  rms_norm_eps (1e-6), hidden_act relu2|silu, tie_word_embeddings (true), bos_token_id,\n"
        "  eos_token_id. `bitnet tokenizer-train` writes a starter config.json next to its tokenizer.\n"
        "OUTDIR gets config.json + model.safetensors (float32 master weights), train_state.safetensors\n"
        "  (resume state and options), metrics.csv, loss.svg and the tokenizer files.\n");
}

typedef struct { int step; float loss, val, lr, tps; } mrow;

static int write_metrics(const char *dir, const mrow *r, int n) {
    size_t cap = 64 + (size_t)n * 96;
    char *b = malloc(cap); if (!b) return 0;
    size_t o = (size_t)snprintf(b, cap, "step,loss,val_loss,lr,tokens_per_s\n");
    for (int i = 0; i < n; i++) {
        char v[32] = "";
        if (!isnan(r[i].val)) snprintf(v, sizeof v, "%.6f", r[i].val);
        o += (size_t)snprintf(b + o, cap - o, "%d,%.6f,%s,%.6e,%.1f\n", r[i].step, r[i].loss, v, r[i].lr, r[i].tps);
    }
    char *p = cli_path_join(dir, "metrics.csv");
    bitnet_status s = p ? bitnet_write_file_atomic(p, b, o) : BITNET_ERR_NOMEM;
    free(p); free(b);
    return s == BITNET_OK;
}

/* A "nice" tick step for a span divided into about n parts: 1, 2 or 5 times a power of ten. */
static double nice_step(double span, int n) {
    double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* loss.svg, hand-written: the loss panel (raw train loss faint, its EMA bold, validation as
 * dots joined by a line) over a small learning-rate panel, both on one step axis with round
 * ticks. The EMA (alpha 0.1, bias-corrected like Adam's moments) starts at the first row. */
static int write_svg(const char *dir, const mrow *r, int n) {
    if (n == 0) return 1;
    float lo = INFINITY, hi = -INFINITY, lrhi = 0;
    int s0 = 0, s1 = r[n - 1].step;   /* the axis starts at step 0 */
    for (int i = 0; i < n; i++) {
        float v[2] = {r[i].loss, r[i].val};
        for (int k = 0; k < 2; k++) if (isfinite(v[k])) { lo = v[k] < lo ? v[k] : lo; hi = v[k] > hi ? v[k] : hi; }
        if (isfinite(r[i].lr) && r[i].lr > lrhi) lrhi = r[i].lr;
    }
    if (!(lo <= hi)) { lo = 0; hi = 1; }
    if (!(hi > lo)) { hi = lo + 1; }
    if (!(lrhi > 0)) lrhi = 1;
    if (s1 <= s0) s1 = s0 + 1;
    double ystep = nice_step(hi - lo, 6), ylo = floor(lo / ystep + 1e-6) * ystep, yhi = ceil(hi / ystep - 1e-6) * ystep;
    double xstep = nice_step(s1 - s0, 6);
    if (xstep < 1) xstep = 1;
    double lstep = nice_step(lrhi * 1.15, 2), lrtop = ceil(lrhi * 1.15 / lstep - 1e-6) * lstep;  /* headroom above the peak */
    /* layout: loss panel [T, T+PH], lr panel [T+PH+G, H-B] */
    const double W = 860, H = 600, L = 80, R = 40, T = 40, B = 50, G = 30, LH = 110;
    const double PH = H - T - B - G - LH, LT = T + PH + G;
    size_t cap = 16384 + (size_t)n * 64 * 3;
    char *b = malloc(cap); if (!b) return 0;
    size_t o = 0;
#define OUT(...) o += (size_t)snprintf(b + o, o < cap ? cap - o : 0, __VA_ARGS__)
#define X(s) (L + (W - L - R) * ((double)(s) - s0) / (s1 - s0))
#define Y(v) (T + PH * (1.0 - ((v) - ylo) / (yhi - ylo)))
#define YL(v) (LT + LH * (1.0 - (v) / lrtop))
    OUT("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" font-size=\"13\">\n", W, H);
    OUT("<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    OUT("<text x=\"%g\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">training loss (steps %d to %d)</text>\n", W / 2, r[0].step, r[n - 1].step);
    /* y grid + labels, loss panel */
    int yd = ystep >= 1 ? 0 : (int)ceil(-log10(ystep) - 1e-9);
    for (double v = ylo; v <= yhi + ystep * 1e-6; v += ystep) {
        OUT("<line class=\"ytick\" x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", L, Y(v), W - R, Y(v));
        OUT("<text class=\"ylabel\" x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", L - 6, Y(v) + 4, yd, v);
    }
    /* lr panel grid + labels */
    for (int k = 0; k * lstep <= lrtop * (1 + 1e-6); k++) {
        double v = k * lstep;
        OUT("<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", L, YL(v), W - R, YL(v));
        OUT("<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%.2g</text>\n", L - 6, YL(v) + 4, fabs(v) < 1e-30 ? 0.0 : v);
    }
    /* x ticks on both panels, labels under the lr panel */
    for (double st = ceil(s0 / xstep) * xstep; st <= s1 + 1e-9; st += xstep) {
        OUT("<line class=\"xtick\" x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#e4e4e4\"/>\n", X(st), T, X(st), T + PH);
        OUT("<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#e4e4e4\"/>\n", X(st), LT, X(st), LT + LH);
        OUT("<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%.0f</text>\n", X(st), LT + LH + 17, st);
    }
    OUT("<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">step</text>\n", L + (W - L - R) / 2, H - 8);
    OUT("<text transform=\"translate(16,%g) rotate(-90)\" text-anchor=\"middle\">loss</text>\n", T + PH / 2);
    OUT("<text transform=\"translate(16,%g) rotate(-90)\" text-anchor=\"middle\">lr</text>\n", LT + LH / 2);
    OUT("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#888\"/>\n", L, T, W - L - R, PH);
    OUT("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#888\"/>\n", L, LT, W - L - R, LH);
    /* curves */
    OUT("<polyline id=\"train\" fill=\"none\" stroke=\"#9ecae1\" stroke-width=\"1\" points=\"");
    for (int i = 0; i < n; i++) if (isfinite(r[i].loss)) OUT("%.1f,%.1f ", X(r[i].step), Y(r[i].loss));
    OUT("\"/>\n<polyline id=\"train-ema\" fill=\"none\" stroke=\"#08519c\" stroke-width=\"2.5\" points=\"");
    double ema = 0, wsum = 0;
    for (int i = 0; i < n; i++) if (isfinite(r[i].loss)) {
        ema = 0.9 * ema + 0.1 * r[i].loss; wsum = 0.9 * wsum + 0.1;
        OUT("%.1f,%.1f ", X(r[i].step), Y(ema / wsum));
    }
    OUT("\"/>\n<polyline id=\"val\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"");
    for (int i = 0; i < n; i++) if (isfinite(r[i].val)) OUT("%.1f,%.1f ", X(r[i].step), Y(r[i].val));
    OUT("\"/>\n");
    for (int i = 0; i < n; i++) if (isfinite(r[i].val)) OUT("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#d62728\"/>\n", X(r[i].step), Y(r[i].val));
    OUT("<polyline id=\"lr\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\" points=\"");
    for (int i = 0; i < n; i++) if (isfinite(r[i].lr)) OUT("%.1f,%.1f ", X(r[i].step), YL(r[i].lr));
    OUT("\"/>\n");
    /* legend, top right inside the loss panel */
    double lx = W - R - 210, ly = T + 10;
    OUT("<rect x=\"%g\" y=\"%g\" width=\"200\" height=\"66\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n", lx, ly);
    OUT("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#9ecae1\" stroke-width=\"1\"/><text x=\"%g\" y=\"%g\">train (per step)</text>\n", lx + 8, ly + 16, lx + 32, ly + 16, lx + 40, ly + 20);
    OUT("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#08519c\" stroke-width=\"2.5\"/><text x=\"%g\" y=\"%g\">train (EMA 0.9)</text>\n", lx + 8, ly + 34, lx + 32, ly + 34, lx + 40, ly + 38);
    OUT("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#d62728\" stroke-width=\"2\"/><circle cx=\"%g\" cy=\"%g\" r=\"3.5\" fill=\"#d62728\"/><text x=\"%g\" y=\"%g\">validation</text>\n",
        lx + 8, ly + 52, lx + 32, ly + 52, lx + 20, ly + 52, lx + 40, ly + 56);
    OUT("</svg>\n");
#undef OUT
#undef X
#undef Y
#undef YL
    int ok = o < cap;
    char *p = ok ? cli_path_join(dir, "loss.svg") : NULL;
    bitnet_status s = p ? bitnet_write_file_atomic(p, b, o) : BITNET_ERR_NOMEM;
    free(p); free(b);
    return s == BITNET_OK;
}

/* Read back OUTDIR/metrics.csv rows with step < upto (resume keeps the history). */
static int read_metrics(const char *dir, int upto, mrow **rows, int *n, int *cap) {
    char *p = cli_path_join(dir, "metrics.csv"), *txt = NULL;
    if (!p || cli_read_file(p, &txt, NULL) != BITNET_OK) { free(p); return 0; }
    free(p);
    char *line = strchr(txt, '\n');
    while (line && *++line) {
        mrow r; char val[64] = "";
        int st; float loss, lr, tps;
        if (sscanf(line, "%d,%f,%63[^,],%f,%f", &st, &loss, val, &lr, &tps) == 5 ||
            (val[0] = 0, sscanf(line, "%d,%f,,%f,%f", &st, &loss, &lr, &tps) == 4)) {
            if (st < upto) {
                r.step = st; r.loss = loss; r.val = val[0] ? strtof(val, NULL) : NAN; r.lr = lr; r.tps = tps;
                if (*n == *cap) { *cap = *cap ? *cap * 2 : 256; mrow *q = realloc(*rows, *cap * sizeof *q); if (!q) break; *rows = q; }
                (*rows)[(*n)++] = r;
            }
        }
        line = strchr(line, '\n');
    }
    free(txt);
    return 1;
}

static void fmt_eta(double s, char *b, size_t n) {
    if (!(s >= 0) || s > 1e7) { snprintf(b, n, "?"); return; }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%dh%02dm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(b, n, "%dm%02ds", t / 60, t % 60);
    else snprintf(b, n, "%ds", t);
}

/* The run's options: parsed from the command line, stored in the checkpoint (train_options,
 * JSON) and restored by --resume. */
typedef struct {
    const char *init, *config, *data, *val, *tokenizer, *lora_targets;
    int B, T, steps, accum, eval_every, eval_batches, save_every, seed, no_quant, warmup, lora_rank, grad_ckpt;
    float lr, beta1, beta2, eps, wd, clip, lora_alpha, lora_dropout;
    int sched;
} run_opts;

enum { K_INT, K_FLOAT, K_STR, K_SCHED };
/* fixed: cannot change on --resume (the step's shape or the kind of model); info: stored as a
 * record, never applied on resume (the model comes from OUTDIR). */
static const struct { const char *opt, *key; int kind; size_t off; int fixed, info; } OPTS[] = {
    {"--init", "init", K_STR, offsetof(run_opts, init), 0, 1},
    {"--config", "config", K_STR, offsetof(run_opts, config), 0, 1},
    {"--data", "data", K_STR, offsetof(run_opts, data), 0, 0},
    {"--val", "val", K_STR, offsetof(run_opts, val), 0, 0},
    {"--tokenizer", "tokenizer", K_STR, offsetof(run_opts, tokenizer), 0, 1},
    {"--batch", "batch", K_INT, offsetof(run_opts, B), 1, 0},
    {"--seq", "seq", K_INT, offsetof(run_opts, T), 1, 0},
    {"--accum", "accum", K_INT, offsetof(run_opts, accum), 1, 0},
    {"--no-quant", "no_quant", K_INT, offsetof(run_opts, no_quant), 1, 0},
    {"--steps", "steps", K_INT, offsetof(run_opts, steps), 0, 0},
    {"--eval-every", "eval_every", K_INT, offsetof(run_opts, eval_every), 0, 0},
    {"--eval-batches", "eval_batches", K_INT, offsetof(run_opts, eval_batches), 0, 0},
    {"--save-every", "save_every", K_INT, offsetof(run_opts, save_every), 0, 0},
    {"--seed", "seed", K_INT, offsetof(run_opts, seed), 0, 0},
    {"--warmup", "warmup", K_INT, offsetof(run_opts, warmup), 0, 0},
    {"--lr-schedule", "lr_schedule", K_SCHED, offsetof(run_opts, sched), 0, 0},
    {"--lr", "lr", K_FLOAT, offsetof(run_opts, lr), 0, 0},
    {"--beta1", "beta1", K_FLOAT, offsetof(run_opts, beta1), 0, 0},
    {"--beta2", "beta2", K_FLOAT, offsetof(run_opts, beta2), 0, 0},
    {"--eps", "eps", K_FLOAT, offsetof(run_opts, eps), 0, 0},
    {"--wd", "wd", K_FLOAT, offsetof(run_opts, wd), 0, 0},
    {"--clip", "clip", K_FLOAT, offsetof(run_opts, clip), 0, 0},
    {"--lora-rank", "lora_rank", K_INT, offsetof(run_opts, lora_rank), 1, 0},
    {"--lora-alpha", "lora_alpha", K_FLOAT, offsetof(run_opts, lora_alpha), 1, 0},
    {"--lora-targets", "lora_targets", K_STR, offsetof(run_opts, lora_targets), 1, 0},
    {"--lora-dropout", "lora_dropout", K_FLOAT, offsetof(run_opts, lora_dropout), 1, 0},
    {"--grad-checkpoint", "grad_checkpoint", K_INT, offsetof(run_opts, grad_ckpt), 0, 0},
};
#define NOPTS (int)(sizeof OPTS / sizeof OPTS[0])
#define FIELD(o, i, T) ((T *)((char *)(o) + OPTS[i].off))

static void fmt_opt(const run_opts *o, int i, char *b, size_t n) {
    switch (OPTS[i].kind) {
    case K_INT: snprintf(b, n, "%d", *FIELD(o, i, const int)); break;
    case K_FLOAT: snprintf(b, n, "%.7g", (double)*FIELD(o, i, const float)); break;
    case K_SCHED: snprintf(b, n, "%s", bitnet_lr_schedule_name((bitnet_lr_schedule)*FIELD(o, i, const int))); break;
    default: { const char *v = *FIELD(o, i, const char *const); snprintf(b, n, "%s", v ? v : "(none)"); }
    }
}

static char *opts_to_json(const run_opts *o) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "version", 1);
    for (int i = 0; i < NOPTS; i++) {
        switch (OPTS[i].kind) {
        case K_INT: cJSON_AddNumberToObject(r, OPTS[i].key, *FIELD(o, i, const int)); break;
        case K_FLOAT: cJSON_AddNumberToObject(r, OPTS[i].key, *FIELD(o, i, const float)); break;  /* float -> double: exact */
        case K_SCHED: cJSON_AddStringToObject(r, OPTS[i].key, bitnet_lr_schedule_name((bitnet_lr_schedule)*FIELD(o, i, const int))); break;
        default: { const char *v = *FIELD(o, i, const char *const); if (v) cJSON_AddStringToObject(r, OPTS[i].key, v); }
        }
    }
    char *js = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return js;
}

/* Merge the checkpoint's stored options into o: a stored option not given on the command line
 * is taken; one given with another value is applied with a note, or refused when fixed.
 * Strings taken from the JSON are strdup'd into keep[] (freed by the caller). Returns 0 after
 * printing an error. */
static int merge_stored(run_opts *o, const int *given, const char *json, const char *dir, char **keep) {
    cJSON *r = cJSON_Parse(json);
    if (!cJSON_IsObject(r)) { cJSON_Delete(r); fprintf(stderr, "bitnet: train --resume: %s/train_state.safetensors: train_options is not a JSON object\n", dir); return 0; }
    run_opts st = *o;
    int ok = 1;
    for (int i = 0; i < NOPTS && ok; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(r, OPTS[i].key);
        if (!v) continue;
        switch (OPTS[i].kind) {
        case K_INT:
            if (!cJSON_IsNumber(v) || v->valuedouble != (int)v->valuedouble) ok = 0;
            else *FIELD(&st, i, int) = (int)v->valuedouble;
            break;
        case K_FLOAT:
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) ok = 0;
            else *FIELD(&st, i, float) = (float)v->valuedouble;
            break;
        case K_SCHED: {
            bitnet_lr_schedule sc;
            if (!cJSON_IsString(v) || !bitnet_lr_schedule_parse(v->valuestring, &sc)) ok = 0;
            else *FIELD(&st, i, int) = (int)sc;
            break;
        }
        default:
            if (!cJSON_IsString(v) || !(keep[i] = strdup(v->valuestring))) ok = 0;
            else *FIELD(&st, i, const char *) = keep[i];
        }
        if (!ok) { fprintf(stderr, "bitnet: train --resume: %s/train_state.safetensors: stored option '%s' is malformed\n", dir, OPTS[i].key); break; }
        char was[512], now[512];
        fmt_opt(&st, i, was, sizeof was); fmt_opt(o, i, now, sizeof now);
        if (!given[i]) { memcpy((char *)o + OPTS[i].off, (char *)&st + OPTS[i].off, OPTS[i].kind == K_STR ? sizeof(char *) : OPTS[i].kind == K_FLOAT ? sizeof(float) : sizeof(int)); continue; }
        int same = OPTS[i].kind == K_FLOAT ? *FIELD(&st, i, float) == *FIELD(o, i, float) : !strcmp(was, now);
        if (same || OPTS[i].info) continue;
        if (OPTS[i].fixed) {
            fprintf(stderr, "bitnet: train --resume: %s %s differs from the run's %s: batch shape and quantization cannot change "
                    "within a run; start a new run from its weights with --init %s -o NEWDIR\n", OPTS[i].opt, now, was, dir);
            ok = 0;
        } else fprintf(stderr, "note: %s %s replaces the run's %s\n", OPTS[i].opt, now, was);
    }
    cJSON_Delete(r);
    return ok;
}

/* Copy the tokenizer from src (a folder, or a tokenizer.json / .model file whose folder may
 * hold tokenizer_config.json etc.) into dir. Returns the number of files copied, -1 on error. */
static int copy_tokenizer(const char *src, const char *dir) {
    int n = 0;
    if (cli_is_dir(src)) return bitnet_copy_tokenizer_files(src, dir, &n) ? -1 : n;
    if (!cli_file_exists(src)) { fprintf(stderr, "bitnet: train: tokenizer: %s: no such tokenizer file or folder\n", src); return -2; }
    const char *slash = strrchr(src, '/');
    char folder[4096];
    snprintf(folder, sizeof folder, "%.*s", slash ? (int)(slash - src) : 1, slash ? src : ".");
    if (bitnet_copy_tokenizer_files(folder, dir, &n)) return -1;
    size_t L = strlen(src);
    const char *name = L > 6 && !strcmp(src + L - 6, ".model") ? "tokenizer.model" : "tokenizer.json";
    char *txt; size_t len;
    char *dst = cli_path_join(dir, name);
    if (!dst || cli_read_file(src, &txt, &len)) { free(dst); fprintf(stderr, "bitnet: train: cannot read the tokenizer %s\n", src); return -2; }
    bitnet_status s = bitnet_write_file_atomic(dst, txt, len);
    free(txt); free(dst);
    return s ? -1 : n + 1;
}

/* &given[k] for the stored option named opt (NULL when it is not one of OPTS). */
static int *given_slot(const char *opt, int *given) {
    for (int k = 0; k < NOPTS; k++) if (!strcmp(OPTS[k].opt, opt)) return &given[k];
    return NULL;
}

/* Chat SFT data: --data/--val FILE.jsonl rendered with the chat template of the tokenizer's
 * folder (tok: --tokenizer, --init or OUTDIR), assistant turns trained; returns 0 after an error. */
static int ends_with(const char *s, const char *suf) { size_t a = strlen(s), b = strlen(suf); return a >= b && !strcmp(s + a - b, suf); }
static int set_chat_data(bitnet_trainer *tr, const char *data, const char *val, const char *tok_src) {
    if (val && !ends_with(val, ".jsonl")) { fprintf(stderr, "bitnet: train: --data is chat JSONL, so --val must be too (got %s)\n", val); return 0; }
    bitnet_tokenizer *tok = NULL;
    bitnet_chat_template tmpl = BITNET_CHAT_PLAIN;
    char folder[4096];
    const char *slash = strrchr(tok_src, '/');
    if (cli_is_dir(tok_src)) snprintf(folder, sizeof folder, "%s", tok_src);
    else snprintf(folder, sizeof folder, "%.*s", slash ? (int)(slash - tok_src) : 1, slash ? tok_src : ".");
    if (bitnet_tokenizer_load(tok_src, &tok) || bitnet_chat_template_detect(folder, &tmpl)) { cli_fail("train: chat data: tokenizer"); bitnet_tokenizer_free(tok); return 0; }
    int32_t *ids[2] = {0}, *vi; uint8_t *mask[2] = {0}; size_t n[2] = {0}; int64_t ex[2] = {0};
    int ok = 1;
    for (int k = 0; k < 2 && ok; k++) {
        const char *path = k ? val : data;
        if (!path) continue;
        if (bitnet_sft_load_jsonl(path, tok, tmpl, &ids[k], &mask[k], &n[k], &ex[k])) { ok = 0; cli_fail("train: chat data"); break; }
        size_t tr_n = 0;
        for (size_t i = 0; i < n[k]; i++) tr_n += mask[k][i];
        fprintf(stderr, "chat data: %s: %lld conversations, %zu tokens, %zu trained (assistant turns), template %s\n",
                path, (long long)ex[k], n[k], tr_n, bitnet_chat_template_name(tmpl));
    }
    vi = val ? ids[1] : NULL;
    if (ok && bitnet_trainer_set_data_tokens(tr, ids[0], mask[0], n[0], vi, mask[1], n[1])) { ok = 0; cli_fail("train: data"); }
    for (int k = 0; k < 2; k++) { free(ids[k]); free(mask[k]); }
    bitnet_tokenizer_free(tok);
    return ok;
}

/* The progress line, printed from the library's per-step callback. */
typedef struct { double fpt; } progress_ctx;
static void print_progress(void *ud, const bitnet_train_progress *p) {
    const progress_ctx *c = ud;
    char eta[32]; fmt_eta(p->eta_s, eta, sizeof eta);
    printf("step %lld/%lld | loss %.6f | lr %.3e | grad norm %.4f | %.0f tok/s | %.1f GFLOP/s | ETA %s\n",
           (long long)p->step, (long long)p->total_steps, p->loss, p->lr, p->grad_norm, p->tokens_per_s, c->fpt * p->tokens_per_s / 1e9, eta);
    fflush(stdout);
}

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

/* One `bitnet train` invocation: the options, the trainer and the metrics rows. */
typedef struct {
    run_opts o;
    const char *outdir, *dump, *device, *sched, *prec;
    int nth, resume, force, stop_after, dry_run, eval_first, nproc;
    int given[NOPTS];
    char *keep[NOPTS], *absp[NOPTS];   /* strings from the checkpoint; absolute paths */
    bitnet_train_params tp;
    bitnet_trainer *tr;
    bitnet_trainer_info info;
    mrow *rows; int nrows, caprows;
    char *stored, *optjs;
    progress_ctx pctx;
    train_rank rk;                     /* data parallel: this process's rank (world 0: alone) */
    int64_t last_saved;
} train_cli;

static int given_opt(const train_cli *c, const char *opt) { const int *g = given_slot(opt, (int *)c->given); return g && *g; }

/* The option table and the checks on single values; 0 when parsed, else the exit code. */
static int parse_args(train_cli *c, int argc, char **argv) {
    run_opts *o = &c->o;
    int *given = c->given;
#define SEEN(name) given_slot(name, given)
    arg_opt opts[] = {
        {.names = "init", .kind = ARG_STR, .dst = &o->init, .meta = "DIR", .help = "start from an HF master checkpoint folder (F32/BF16/F16)", .seen = SEEN("--init")},
        {.names = "config", .kind = ARG_STR, .dst = &o->config, .meta = "FILE.json", .help = "start from a fresh random model of this config (--seed)", .seen = SEEN("--config")},
        OPT_FLAG(0, "resume", &c->resume, "continue OUTDIR's run from its last checkpoint (bit-exact)"),
        OPT_FLAG(0, "force", &c->force, "start a new run in an OUTDIR that already holds one (overwrites it)"),
        {.names = "data", .kind = ARG_STR, .dst = &o->data, .meta = "FILE.u32", .help = "training tokens (uint32 LE; bitnet tokenize-file)", .seen = SEEN("--data")},
        {.names = "val", .kind = ARG_STR, .dst = &o->val, .meta = "FILE.u32", .help = "validation tokens", .seen = SEEN("--val")},
        {.names = "tokenizer", .kind = ARG_STR, .dst = &o->tokenizer, .meta = "DIR|FILE", .help = "tokenizer copied into OUTDIR", .seen = SEEN("--tokenizer")},
        OPT_STR('o', NULL, &c->outdir, "OUTDIR", "output folder (checkpoint, metrics.csv, loss.svg)"),
        OPT_STR(0, "dump-grads", &c->dump, "FILE", "write the first step's gradients (safetensors)"),
        {.names = "batch", .kind = ARG_INT, .lo = 1, .hi = 1 << 20, .dst = &o->B, .meta = "B", .help = "sequences per micro-batch (all ranks together)", .seen = SEEN("--batch")},
        {.names = "seq", .kind = ARG_INT, .lo = 1, .hi = 1 << 20, .dst = &o->T, .meta = "T", .help = "tokens per sequence", .seen = SEEN("--seq")},
        {.names = "steps", .kind = ARG_INT, .lo = 1, .hi = BITNET_TRAIN_MAX_STEPS, .dst = &o->steps, .meta = "N", .help = "optimizer steps of the run", .seen = SEEN("--steps")},
        {.names = "accum", .kind = ARG_INT, .lo = 1, .hi = 1 << 16, .dst = &o->accum, .meta = "K", .help = "micro-batches per step", .seen = SEEN("--accum")},
        {.names = "eval-every", .kind = ARG_INT, .lo = 0, .hi = BITNET_TRAIN_MAX_STEPS, .dst = &o->eval_every, .meta = "N", .help = "validation every N steps (0 = at the end only)", .seen = SEEN("--eval-every")},
        {.names = "eval-batches", .kind = ARG_INT, .lo = 1, .hi = 1 << 20, .dst = &o->eval_batches, .meta = "N", .help = "validation batches", .seen = SEEN("--eval-batches")},
        {.names = "save-every", .kind = ARG_INT, .lo = 0, .hi = BITNET_TRAIN_MAX_STEPS, .dst = &o->save_every, .meta = "N", .help = "checkpoint every N steps (0 = at the end)", .seen = SEEN("--save-every")},
        OPT_INT(0, "stop-after", 0, BITNET_TRAIN_MAX_STEPS, &c->stop_after, "N", "run at most N steps now, save, and exit (continue with --resume)"),
        {.names = "seed", .kind = ARG_INT, .lo = 0, .hi = INT32_MAX, .dst = &o->seed, .meta = "S", .help = "random init and data order", .seen = SEEN("--seed")},
        OPT_INT('t', "threads", 1, 512, &c->nth, "N", "worker threads"),
        OPT_STR(0, "device", &c->device, "DEV", "cpu (default), cuda or cuda:N (make CUDA=1 builds; not stored: a resume picks its own)"),
        OPT_INT(0, "nproc", 0, 4096, &c->nproc, "N", "data parallel: fork N ranks, rank r on GPU r (--device cuda; not stored)"),
        OPT_CHOICE(0, "precision", &c->prec, "default|fast|parity", "GPU rounding: default, fast (bf16 attention and head, like autocast) or parity (fp32; the CPU ignores it; not stored)"),
        {.names = "warmup", .kind = ARG_INT, .lo = 0, .hi = BITNET_TRAIN_MAX_STEPS, .dst = &o->warmup, .meta = "STEPS", .help = "linear warmup steps", .seen = SEEN("--warmup")},
        {.names = "lr", .kind = ARG_FLOAT, .lo = 0, .hi = INFINITY, .dst = &o->lr, .meta = "LR", .help = "peak learning rate (> 0)", .flags = ARG_OPEN_LO, .seen = SEEN("--lr")},
        {.names = "beta1", .kind = ARG_FLOAT, .lo = 0, .hi = 1, .dst = &o->beta1, .meta = "B", .help = "AdamW beta1 in [0, 1)", .seen = SEEN("--beta1")},
        {.names = "beta2", .kind = ARG_FLOAT, .lo = 0, .hi = 1, .dst = &o->beta2, .meta = "B", .help = "AdamW beta2 in [0, 1)", .seen = SEEN("--beta2")},
        {.names = "eps", .kind = ARG_FLOAT, .lo = 0, .hi = INFINITY, .dst = &o->eps, .meta = "E", .help = "AdamW epsilon (> 0)", .flags = ARG_OPEN_LO, .seen = SEEN("--eps")},
        {.names = "wd", .kind = ARG_FLOAT, .lo = 0, .hi = INFINITY, .dst = &o->wd, .meta = "WD", .help = "weight decay (>= 0)", .seen = SEEN("--wd")},
        {.names = "clip", .kind = ARG_FLOAT, .lo = 0, .hi = INFINITY, .dst = &o->clip, .meta = "C", .help = "gradient norm clip (0 = off)", .seen = SEEN("--clip")},
        {.names = "lr-schedule", .kind = ARG_STR, .dst = &c->sched, .choices = "constant|cosine|two-stage", .help = "learning-rate schedule", .seen = SEEN("--lr-schedule")},
        {.names = "no-quant", .kind = ARG_FLAG, .dst = &o->no_quant, .help = "full precision (labelled full_precision; bitnet run refuses it)", .seen = SEEN("--no-quant")},
        OPT_FLAG(0, "dry-run", &c->dry_run, "print the memory plan and exit"),
        OPT_FLAG(0, "eval-first", &c->eval_first, "also evaluate --val before the first step of this invocation"),
        {.names = "lora-rank", .kind = ARG_INT, .lo = 0, .hi = 65536, .dst = &o->lora_rank, .meta = "R", .help = "train LoRA adapters of rank R on the frozen base (0 = all weights)", .seen = SEEN("--lora-rank")},
        {.names = "lora-alpha", .kind = ARG_FLOAT, .lo = 0, .hi = INFINITY, .dst = &o->lora_alpha, .meta = "A", .help = "LoRA alpha (> 0; default 2R)", .flags = ARG_OPEN_LO, .seen = SEEN("--lora-alpha")},
        {.names = "lora-targets", .kind = ARG_STR, .dst = &o->lora_targets, .meta = "LIST", .help = "LoRA targets from q,k,v,o,gate,up,down", .seen = SEEN("--lora-targets")},
        {.names = "lora-dropout", .kind = ARG_FLOAT, .lo = 0, .hi = 1, .dst = &o->lora_dropout, .meta = "P", .help = "LoRA dropout on the adapter input, in [0, 1) (PEFT's lora_dropout)", .seen = SEEN("--lora-dropout")},
        {.names = "grad-checkpoint", .kind = ARG_FLAG, .dst = &o->grad_ckpt, .help = "recompute each layer in backward (less memory, same gradients)", .seen = SEEN("--grad-checkpoint")},
        OPT_END,
    };
#undef SEEN
    args_spec spec = {.cmd = "train", .usage = NULL, .tables = {opts}, .titles = {"options"}};
    if (args_parse(&spec, argc, argv, NULL, NULL) != ARGS_OK) return 2;
    if (o->beta1 >= 1 || o->beta2 >= 1) { fprintf(stderr, "bitnet: %s needs a number in [0, 1), got %g\n", o->beta1 >= 1 ? "--beta1" : "--beta2", o->beta1 >= 1 ? o->beta1 : o->beta2); return 2; }
    if (o->lora_dropout >= 1) { fprintf(stderr, "bitnet: --lora-dropout needs a number in [0, 1), got %g\n", o->lora_dropout); return 2; }
    { unsigned mk; if (o->lora_targets && bitnet_lora_parse_targets(o->lora_targets, &mk)) { fprintf(stderr, "bitnet: --lora-targets: %s\n", bitnet_last_error()); return 2; } }
    { bitnet_lr_schedule sc; if (!bitnet_lr_schedule_parse(c->sched, &sc)) { fprintf(stderr, "bitnet: --lr-schedule must be constant, cosine or two-stage, got '%s'\n", c->sched); return 2; } o->sched = (int)sc; }
    /* paths are stored absolute, so a resume from another directory finds them */
    for (int k = 0; k < NOPTS; k++)
        if (OPTS[k].kind == K_STR && given[k] && OPTS[k].off != offsetof(run_opts, lora_targets) && (c->absp[k] = realpath(*FIELD(o, k, const char *), NULL)))
            *FIELD(o, k, const char *) = c->absp[k];
    if (!c->outdir || (!c->resume && (!o->data || !o->init == !o->config))) {
        fprintf(stderr, "bitnet: train needs --data, -o OUTDIR and exactly one of --init DIR / --config FILE.json (or --resume)\n");
        usage(); return 2;
    }
    return 0;
}

/* --dry-run: the memory plan of this run; nothing is loaded or written. Returns the exit code. */
static int dry_run_plan(const train_cli *c) {
    const run_opts *o = &c->o;
    bitnet_train_params dp = c->tp;
    dp.batch = o->B; dp.seq = o->T; dp.n_threads = c->nth; dp.no_quant = o->no_quant;
    if (o->lora_rank > 0) {
        dp.param_set = BITNET_TRAIN_LORA; dp.lora_rank = o->lora_rank;
        if (o->lora_targets && bitnet_lora_parse_targets(o->lora_targets, &dp.lora_targets)) return cli_fail("train: --lora-targets");
    }
    bitnet_train_memory mp;
    if (bitnet_train_plan(o->init ? o->init : o->config, &dp, &mp)) return cli_fail("train --dry-run");
    const double MB = 1024.0 * 1024.0;
    printf("memory plan (%s, batch %d x seq %d):\n", o->lora_rank > 0 ? "LoRA on a frozen base" : "full training", o->B, o->T);
    printf("  weights      %10.1f MiB\n  gradients    %10.1f MiB\n  optimizer    %10.1f MiB\n  adapters     %10.1f MiB\n  activations  %10.1f MiB\n  total        %10.1f MiB\n",
           mp.weights / MB, mp.grads / MB, mp.optimizer / MB, mp.adapters / MB, mp.activations / MB, mp.total / MB);
    return 0;
}

/* Resume: merge the checkpoint's stored options. A new run: refuse an OUTDIR that holds one
 * (unless --force; rank 0 alone looks). Returns 0 or the exit code. */
static int check_outdir(train_cli *c) {
    run_opts *o = &c->o;
    const char *outdir = c->outdir;
    if (c->resume) {
        if ((o->init || o->config) && c->rk.rank == 0) fprintf(stderr, "note: --resume continues %s's model; %s is ignored\n", outdir, o->init ? "--init" : "--config");
        if (bitnet_trainer_read_options_text(outdir, &c->stored)) return cli_fail("train --resume");
        if (c->stored && !merge_stored(o, c->given, c->stored, outdir, c->keep)) return 2;
        if (!c->stored && c->rk.rank == 0) fprintf(stderr, "note: %s's checkpoint stores no options (older bitnet); using the command line's\n", outdir);
        if (!o->data) { fprintf(stderr, "bitnet: train --resume: the checkpoint names no --data; give it\n"); return 2; }
        return 0;
    }
    if (cli_file_exists(outdir) && !cli_is_dir(outdir)) { fprintf(stderr, "bitnet: train: %s exists and is not a folder\n", outdir); return 1; }
    if (c->rk.rank != 0) return 0;
    static const char *run_files[] = {"train_state.safetensors", "model.safetensors", "metrics.csv", "adapter_model.safetensors"};
    for (int k = 0; k < 4; k++) {
        char *p = cli_path_join(outdir, run_files[k]);
        int there = p && cli_file_exists(p);
        if (there && !c->force) {
            fprintf(stderr, "bitnet: train: %s already holds a run (%s); continue it with --resume, or pass --force to start over and overwrite it\n", outdir, run_files[k]);
            free(p); return 1;
        }
        if (there && k == 0) unlink(p);  /* --force: a crash before the first save must not resume the old run */
        free(p);
    }
    return 0;
}

/* The library's parameters from the options, the trainer and its data. Returns 0 or the exit code. */
static int make_trainer(train_cli *c) {
    const run_opts *o = &c->o;
    bitnet_train_params *tp = &c->tp;
    tp->optim.lr = o->lr; tp->optim.beta1 = o->beta1; tp->optim.beta2 = o->beta2; tp->optim.eps = o->eps; tp->optim.weight_decay = o->wd;
    tp->optim.clip = o->clip; tp->optim.warmup = o->warmup; tp->optim.schedule = (bitnet_lr_schedule)o->sched;
    tp->total_steps = o->steps; tp->batch = o->B; tp->seq = o->T; tp->accum = o->accum; tp->no_quant = o->no_quant;
    tp->n_threads = c->nth; tp->seed = (uint64_t)o->seed; tp->device = c->device; tp->grad_checkpoint = o->grad_ckpt;
    tp->world_size = c->rk.world; tp->rank = c->rk.rank; tp->dist_id_path = c->rk.id_path;
    if (c->rk.world) tp->device = c->rk.device;
    if (c->prec) tp->precision = !strcmp(c->prec, "fast") ? BITNET_TRAIN_PREC_FAST : !strcmp(c->prec, "parity") ? BITNET_TRAIN_PREC_PARITY : BITNET_TRAIN_PREC_DEFAULT;
    if (o->lora_rank > 0) {   /* LoRA: adapters on the frozen --init base; OUTDIR gets the PEFT adapter */
        if (!o->init) { fprintf(stderr, "bitnet: train: --lora-rank needs --init DIR (the base model)\n"); return 2; }
        tp->param_set = BITNET_TRAIN_LORA; tp->lora_rank = o->lora_rank;
        tp->lora_alpha = o->lora_alpha > 0 ? o->lora_alpha : 2.0f * o->lora_rank;
        tp->lora_dropout = o->lora_dropout;
        if (o->lora_targets && bitnet_lora_parse_targets(o->lora_targets, &tp->lora_targets)) return cli_fail("train: --lora-targets");
    }
    if (mkdir(c->outdir, 0777) != 0 && errno != EEXIST) { fprintf(stderr, "bitnet: train: cannot create %s: %s\n", c->outdir, strerror(errno)); return 1; }
    /* resume: shape + weights from OUTDIR, the state below; else --init DIR or a fresh --config model */
    if (c->rk.rank == 0) { tp->progress = print_progress; tp->progress_ud = &c->pctx; }
    if (bitnet_trainer_new(c->resume && o->lora_rank <= 0 ? c->outdir : o->init ? o->init : o->config, tp, &c->tr))
        return cli_fail(c->resume ? "train --resume" : "train: model");
    bitnet_trainer_get_info(c->tr, &c->info);
    if (c->resume && !c->stored && c->info.full_precision && !o->no_quant) {
        fprintf(stderr, "bitnet: train --resume: %s is a full-precision (--no-quant) run; pass --no-quant to continue it\n", c->outdir);
        return 2;
    }
    if (ends_with(o->data, ".jsonl")) {
        if (!set_chat_data(c->tr, o->data, o->val, o->tokenizer ? o->tokenizer : c->resume ? c->outdir : o->init ? o->init : c->outdir)) return 1;
    } else if (bitnet_trainer_set_data(c->tr, o->data, o->val)) return cli_fail("train: data");
    return 0;
}

/* Resume: the checkpoint's state (a new --seed reorders the remaining windows) and metrics rows. */
static int load_resume_state(train_cli *c) {
    bitnet_trainer *tr = c->tr;
    if (bitnet_trainer_load_state(tr, c->outdir)) return cli_fail("train --resume");
    if (given_opt(c, "--seed") && bitnet_trainer_reseed(tr, (uint64_t)c->o.seed)) return cli_fail("train --resume");
    long long at = (long long)bitnet_trainer_get_step(tr);
    if (at >= c->o.steps) {
        fprintf(stderr, "bitnet: train --resume: %s is already at step %lld of %d; to train further pass --steps M with M > %lld "
                "(the lr schedule then spans M steps)\n", c->outdir, at, c->o.steps, at);
        return 1;
    }
    if (c->rk.rank != 0) return 0;
    read_metrics(c->outdir, (int)at + 1, &c->rows, &c->nrows, &c->caprows);
    fprintf(stderr, "resuming %s at step %lld of %d\n", c->outdir, at, c->o.steps);
    return 0;
}

/* A new run: copy the tokenizer (--tokenizer, --init, or the --config file's folder) into OUTDIR
 * and check that the model's vocabulary covers it. Rank 0 only. */
static int install_tokenizer(train_cli *c) {
    const run_opts *o = &c->o;
    const char *tsrc = o->tokenizer ? o->tokenizer : o->init;
    char cfgdir[4096];
    if (!tsrc && o->config) {
        const char *slash = strrchr(o->config, '/');
        snprintf(cfgdir, sizeof cfgdir, "%.*s", slash ? (int)(slash - o->config) : 1, slash ? o->config : ".");
        tsrc = cfgdir;
    }
    int nt = tsrc ? copy_tokenizer(tsrc, c->outdir) : 0;
    if (nt < 0) return nt == -2 ? 1 : cli_fail("train: tokenizer");
    if (!nt) { fprintf(stderr, "note: no tokenizer files found (pass --tokenizer DIR): %s cannot be run until one is copied into it\n", c->outdir); return 0; }
    bitnet_tokenizer *tk;
    if (bitnet_tokenizer_load(c->outdir, &tk) == BITNET_OK) {
        int tv = bitnet_tokenizer_vocab_size(tk);
        bitnet_tokenizer_free(tk);
        if (tv > c->info.vocab_size) {
            fprintf(stderr, "bitnet: train: the tokenizer from %s has %d tokens but the model's vocab_size is %d: "
                    "prompts would encode to ids the model cannot embed; raise vocab_size to >= %d\n", tsrc, tv, c->info.vocab_size, tv);
            return 2;
        }
    }
    fprintf(stderr, "tokenizer: copied %d file(s) from %s\n", nt, tsrc);
    return 0;
}

/* After a step: evaluation, metrics and checkpoint as the options say (data parallel: every rank
 * evaluates its shard and checks the replicas at a save; rank 0 alone writes). 0 or the exit code. */
static int after_step(train_cli *c, int last) {
    const run_opts *o = &c->o;
    bitnet_trainer *tr = c->tr;
    long long step = (long long)bitnet_trainer_get_step(tr);
    int lead = c->rk.rank == 0;
    int eval_now = o->val && ((o->eval_every > 0 && step % o->eval_every == 0) || last);
    if (eval_now) {
        float vl;
        if (bitnet_trainer_eval(tr, o->eval_batches, &vl)) return cli_fail("train: eval");
        c->rows[c->nrows - 1].val = vl;
        if (lead) { printf("eval step %lld | val_loss %.6f\n", step, vl); fflush(stdout); }
    }
    if ((eval_now || last) && lead && (!write_metrics(c->outdir, c->rows, c->nrows) || !write_svg(c->outdir, c->rows, c->nrows)))
        fprintf(stderr, "bitnet: train: warning: cannot write metrics.csv/loss.svg in %s: %s\n", c->outdir, bitnet_last_error());
    if (!((o->save_every > 0 && step % o->save_every == 0) || last)) return 0;
    if (c->rk.world && bitnet_trainer_check_replicas(tr)) return cli_fail("train");
    if (lead && bitnet_trainer_save(tr, c->outdir)) {
        fprintf(stderr, "bitnet: train: saving checkpoint at step %lld failed: %s\n", step, bitnet_last_error());
        fprintf(stderr, "bitnet: train: the previous checkpoint in %s (step %lld) is intact\n", c->outdir, (long long)c->last_saved);
        return 1;
    }
    c->last_saved = step;
    return 0;
}

/* The step loop (Ctrl-C: checkpoint at the end of the step, exit 130; data parallel: the ranks
 * agree on stopping inside the step). Returns the exit code. */
static int run_steps(train_cli *c) {
    bitnet_trainer *tr = c->tr;
    int ran = 0, rc = 0, lead = c->rk.rank == 0;
    double tok_total = 0, sec_total = 0;
    c->last_saved = bitnet_trainer_get_step(tr);
    if (c->eval_first && c->o.val) {
        float vl;
        if (bitnet_trainer_eval(tr, c->o.eval_batches, &vl)) return cli_fail("train: eval");
        if (lead) { printf("eval step %lld | val_loss %.6f\n", (long long)bitnet_trainer_get_step(tr), vl); fflush(stdout); }
    }
    while (bitnet_trainer_get_step(tr) < c->o.steps && !(c->stop_after && ran >= c->stop_after)) {
        bitnet_train_stats st;
        if (g_interrupted) bitnet_trainer_cancel(tr);
        if (bitnet_trainer_step(tr, &st)) {
            fprintf(stderr, "bitnet: train: %s\n", bitnet_last_error());
            if (lead) fprintf(stderr, "bitnet: train: stopped; the last good checkpoint in %s is from step %lld\n", c->outdir, (long long)c->last_saved);
            return 1;
        }
        tok_total += st.tokens; sec_total += st.seconds;   /* the progress line came from print_progress */
        if (c->nrows == c->caprows) {
            c->caprows = c->caprows ? c->caprows * 2 : 256;
            mrow *q = realloc(c->rows, c->caprows * sizeof *q);
            if (!q) return 1;
            c->rows = q;
        }
        c->rows[c->nrows++] = (mrow){(int)bitnet_trainer_get_step(tr), st.loss, NAN, st.lr, (float)(st.tokens / st.seconds)};
        ran++;
        if (g_interrupted && !c->rk.world) bitnet_trainer_cancel(tr);   /* alone: stop after this step */
        int stop = bitnet_trainer_cancelled(tr);
        int last = bitnet_trainer_get_step(tr) == c->o.steps || ran == c->stop_after || stop;
        if ((rc = after_step(c, last))) return rc;
        if (stop) {
            if (lead) fprintf(stderr, "interrupted: checkpoint at step %lld of %d saved in %s; continue with: bitnet train --resume -o %s\n",
                              (long long)bitnet_trainer_get_step(tr), c->o.steps, c->outdir, c->outdir);
            return 130;
        }
    }
    if (sec_total > 0 && lead)
        fprintf(stderr, "done: %lld steps, %.0f tokens/s average%s, checkpoint in %s\n", (long long)bitnet_trainer_get_step(tr), tok_total / sec_total,
                c->rk.world > 1 ? " (all ranks)" : "", c->outdir);
    return 0;
}

/* Everything after the options: the trainer, the state or tokenizer, the options text, the
 * loop. Returns the exit code. */
static int train_run(train_cli *c) {
    int rc;
    if ((rc = check_outdir(c)) || (rc = make_trainer(c))) return rc;
    if (c->resume) rc = load_resume_state(c);
    else if (c->rk.rank == 0) rc = install_tokenizer(c);
    if (rc) return rc;
    if (c->resume && c->o.tokenizer && given_opt(c, "--tokenizer") && c->rk.rank == 0) {  /* a new one given on resume */
        int nt = copy_tokenizer(c->o.tokenizer, c->outdir);
        if (nt < 0) return nt == -2 ? 1 : cli_fail("train: tokenizer");
    }
    if (!(c->optjs = opts_to_json(&c->o))) { fprintf(stderr, "bitnet: train: out of memory\n"); return 1; }
    if (bitnet_trainer_set_options_text(c->tr, c->optjs) || (c->dump && c->rk.rank == 0 && bitnet_trainer_dump_next_grads(c->tr, c->dump)))
        return cli_fail("train");
    c->pctx.fpt = c->info.flops_per_token;
    if (c->rk.world && bitnet_trainer_check_replicas(c->tr)) return cli_fail("train");   /* the same start on every rank */
    if (c->rk.rank == 0) {
        const bitnet_trainer_info *in = &c->info;
        fprintf(stderr, "model: %d layers, hidden %d, vocab %d, %.2fM parameters, %s, gemm %s, %d thread(s)\n",
                in->n_layers, in->hidden_size, in->vocab_size, in->n_params / 1e6,
                c->o.no_quant ? "full precision" : "quantization-aware (ternary weights, int8 activations)", in->gemm, c->nth);
        if (c->o.lora_rank > 0)
            fprintf(stderr, "LoRA: rank %d, alpha %g, %.3fM adapter parameters trained on a frozen base of %.2fM\n",
                    c->o.lora_rank, c->tp.lora_alpha, in->n_params / 1e6, in->n_base_params / 1e6);
        if (c->rk.world)
            fprintf(stderr, "data parallel: %d rank(s) over NCCL, %d sequence(s) per rank and micro-batch\n", c->rk.world, c->o.B / c->rk.world);
    }
    g_interrupted = 0;
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint; sa.sa_flags = SA_RESETHAND;  /* a second Ctrl-C kills as usual */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    rc = run_steps(c);
    sigaction(SIGINT, &old_sa, NULL);
    return rc;
}

int cmd_train(int argc, char **argv) {
    train_cli c = {.o = {.B = 4, .T = 128, .steps = 100, .accum = 1, .eval_batches = 8, .seed = 1337}, .nth = 1};
    c.tp = bitnet_train_default_params();
    const bitnet_optim_params *oc = &c.tp.optim;
    c.o.lr = oc->lr; c.o.beta1 = oc->beta1; c.o.beta2 = oc->beta2; c.o.eps = oc->eps; c.o.wd = oc->weight_decay; c.o.clip = oc->clip;
    c.o.warmup = oc->warmup; c.o.sched = (int)oc->schedule;
    c.sched = bitnet_lr_schedule_name((bitnet_lr_schedule)c.o.sched);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(); return 0; }
    int rc = parse_args(&c, argc, argv);
    if (!rc && c.dry_run && !c.resume) rc = dry_run_plan(&c);
    else if (!rc) {
        int launched = 0;
        rc = train_rank_setup(&c.rk, c.nproc, c.device, c.o.B, c.outdir, &launched);
        if (!rc && !launched) rc = train_run(&c);
        if (c.rk.world > 1 && rc && rc != 130) fprintf(stderr, "bitnet: train: rank %d of %d stops (exit %d)\n", c.rk.rank, c.rk.world, rc);
    }
    free(c.rows); free(c.stored); free(c.optjs);
    for (int k = 0; k < NOPTS; k++) { free(c.keep[k]); free(c.absp[k]); }
    bitnet_trainer_free(c.tr);
    return rc;
}
