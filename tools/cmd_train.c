/* cmd_train.c — `bitnet train`: quantization-aware training (or --no-quant full precision) of a
 * BitNet b1.58 model on a uint32 token file, with AdamW, LR schedules, evaluation, checkpoints,
 * --resume, metrics.csv and a hand-drawn loss.svg in OUTDIR. All numerics are in the library
 * (src/train*.c, src/optim.c, src/data.c); this file parses options, prints and draws. */
#include "cli.h"
#include "train_loop.h"
#include "gemm_f32.h"
#include <math.h>
#include <errno.h>
#include <sys/stat.h>

static void usage(void) {
    fprintf(stderr,
        "usage: bitnet train (--init DIR | --config FILE.json | --resume) --data FILE.u32 -o OUTDIR [options]\n"
        "  --init DIR          start from an HF master checkpoint folder (F32/BF16/F16)\n"
        "  --config FILE.json  start from a fresh random model of this config (--seed)\n"
        "  --resume            continue from OUTDIR's last checkpoint (bit-exact)\n"
        "  --data FILE.u32     training tokens (uint32 LE)     --val FILE.u32  validation tokens\n"
        "  --batch B (4) --seq T (128) --steps N (100) --accum K (1)\n"
        "  --lr (1e-3) --beta1 (0.9) --beta2 (0.95) --eps (1e-8) --wd (0.1) --clip (1.0, 0 = off)\n"
        "  --lr-schedule constant|cosine|two-stage (constant) --warmup STEPS (0)\n"
        "  --eval-every N (0 = at the end only) --eval-batches N (8) --save-every N (0 = at the end)\n"
        "  --seed S (1337) -t THREADS (1) --no-quant --dump-grads FILE.safetensors\n"
        "  --stop-after N      run at most N steps now, save, and exit (continue later with --resume)\n");
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
    char *p = bn_path_join(dir, "metrics.csv");
    bitnet_status s = p ? bn_write_file_atomic(p, b, o) : BITNET_ERR_NOMEM;
    free(p); free(b);
    return s == BITNET_OK;
}

/* A small hand-written SVG: train loss as a polyline, validation loss as a polyline with dots. */
static int write_svg(const char *dir, const mrow *r, int n) {
    if (n == 0) return 1;
    float lo = INFINITY, hi = -INFINITY;
    int s0 = r[0].step, s1 = r[n - 1].step;
    for (int i = 0; i < n; i++) {
        float v[2] = {r[i].loss, r[i].val};
        for (int k = 0; k < 2; k++) if (isfinite(v[k])) { lo = v[k] < lo ? v[k] : lo; hi = v[k] > hi ? v[k] : hi; }
    }
    if (!(hi > lo)) { hi = lo + 1; }
    const double W = 800, H = 500, L = 70, R = 20, T = 30, B = 50;
    size_t cap = 4096 + (size_t)n * 64 * 2;
    char *b = malloc(cap); if (!b) return 0;
    size_t o = 0;
#define OUT(...) o += (size_t)snprintf(b + o, cap - o, __VA_ARGS__)
#define X(s) (L + (W - L - R) * (s1 > s0 ? (double)((s) - s0) / (s1 - s0) : 0.5))
#define Y(v) (T + (H - T - B) * (1.0 - ((v) - lo) / (hi - lo)))
    OUT("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    OUT("<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    OUT("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", L, H - B, W - R, H - B);
    OUT("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", L, T, L, H - B);
    for (int k = 0; k <= 4; k++) {
        double v = lo + (hi - lo) * k / 4.0;
        OUT("<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.3f</text>\n", L - 5, Y(v) + 4, v);
        OUT("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/>\n", L, Y(v), W - R, Y(v));
    }
    OUT("<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">step %d</text>\n", L, H - B + 18, s0);
    OUT("<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">step %d</text>\n", W - R, H - B + 18, s1);
    OUT("<text x=\"%g\" y=\"18\" text-anchor=\"middle\">loss (blue: train, red: validation)</text>\n", W / 2);
    OUT("<polyline fill=\"none\" stroke=\"steelblue\" stroke-width=\"1.5\" points=\"");
    for (int i = 0; i < n; i++) if (isfinite(r[i].loss)) OUT("%.1f,%.1f ", X(r[i].step), Y(r[i].loss));
    OUT("\"/>\n<polyline fill=\"none\" stroke=\"crimson\" stroke-width=\"2\" points=\"");
    for (int i = 0; i < n; i++) if (isfinite(r[i].val)) OUT("%.1f,%.1f ", X(r[i].step), Y(r[i].val));
    OUT("\"/>\n");
    for (int i = 0; i < n; i++) if (isfinite(r[i].val)) OUT("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"crimson\"/>\n", X(r[i].step), Y(r[i].val));
    OUT("</svg>\n");
#undef OUT
#undef X
#undef Y
    char *p = bn_path_join(dir, "loss.svg");
    bitnet_status s = p ? bn_write_file_atomic(p, b, o) : BITNET_ERR_NOMEM;
    free(p); free(b);
    return s == BITNET_OK;
}

/* Read back OUTDIR/metrics.csv rows with step < upto (resume keeps the history). */
static int read_metrics(const char *dir, int upto, mrow **rows, int *n, int *cap) {
    char *p = bn_path_join(dir, "metrics.csv"), *txt = NULL;
    if (!p || bn_read_file(p, &txt, NULL) != BITNET_OK) { free(p); return 0; }
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

int cmd_train(int argc, char **argv) {
    const char *init = NULL, *config = NULL, *data_path = NULL, *val_path = NULL, *outdir = NULL, *dump = NULL;
    int B = 4, T = 128, steps = 100, accum = 1, eval_every = 0, eval_batches = 8, save_every = 0, nth = 1, no_quant = 0, resume = 0;
    int seed = 1337, stop_after = 0, ran = 0;
    bn_optim_cfg oc; bn_optim_cfg_default(&oc);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && (v || (fprintf(stderr, "bitnet: %s needs a value\n", name), 0)) && (i++, 1))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else if (!strcmp(a, "--no-quant")) no_quant = 1;
        else if (!strcmp(a, "--resume")) resume = 1;
        else if (OPT("--init")) init = v;
        else if (OPT("--config")) config = v;
        else if (OPT("--data")) data_path = v;
        else if (OPT("--val")) val_path = v;
        else if (OPT("-o")) outdir = v;
        else if (OPT("--dump-grads")) dump = v;
        else if (OPT("--batch")) { if (!cli_int(a, v, 1, 1 << 20, &B)) return 2; }
        else if (OPT("--seq")) { if (!cli_int(a, v, 1, 1 << 20, &T)) return 2; }
        else if (OPT("--steps")) { if (!cli_int(a, v, 0, 1 << 30, &steps)) return 2; }
        else if (OPT("--accum")) { if (!cli_int(a, v, 1, 1 << 16, &accum)) return 2; }
        else if (OPT("--eval-every")) { if (!cli_int(a, v, 0, 1 << 30, &eval_every)) return 2; }
        else if (OPT("--eval-batches")) { if (!cli_int(a, v, 1, 1 << 20, &eval_batches)) return 2; }
        else if (OPT("--save-every")) { if (!cli_int(a, v, 0, 1 << 30, &save_every)) return 2; }
        else if (OPT("--stop-after")) { if (!cli_int(a, v, 0, 1 << 30, &stop_after)) return 2; }
        else if (OPT("--seed")) { if (!cli_int(a, v, 0, INT32_MAX, &seed)) return 2; }
        else if (OPT("-t") || (!strcmp(a, "--threads") && v && (i++, 1))) { if (!cli_int(a, v, 1, 512, &nth)) return 2; }
        else if (OPT("--warmup")) { if (!cli_int(a, v, 0, 1 << 30, &oc.warmup)) return 2; }
        else if (OPT("--lr")) { if (!cli_float(a, v, &oc.lr)) return 2; }
        else if (OPT("--beta1")) { if (!cli_float(a, v, &oc.beta1)) return 2; }
        else if (OPT("--beta2")) { if (!cli_float(a, v, &oc.beta2)) return 2; }
        else if (OPT("--eps")) { if (!cli_float(a, v, &oc.eps)) return 2; }
        else if (OPT("--wd")) { if (!cli_float(a, v, &oc.wd)) return 2; }
        else if (OPT("--clip")) { if (!cli_float(a, v, &oc.clip)) return 2; }
        else if (OPT("--lr-schedule")) { if (!bn_lr_sched_parse(v, &oc.sched)) { fprintf(stderr, "bitnet: --lr-schedule must be constant, cosine or two-stage, got '%s'\n", v); return 2; } }
        else { fprintf(stderr, "bitnet: train: unknown option '%s'\n", a); usage(); return 2; }
#undef OPT
    }
    if (!data_path || !outdir || (!resume && !init == !config)) {
        fprintf(stderr, "bitnet: train needs --data, -o OUTDIR and exactly one of --init DIR / --config FILE.json (or --resume)\n");
        usage(); return 2;
    }
    oc.total_steps = steps;
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) { fprintf(stderr, "bitnet: train: cannot create %s: %s\n", outdir, strerror(errno)); return 1; }

    bn_train_model *m = NULL;
    bitnet_status s;
    if (resume) s = bn_train_model_from_dir(outdir, no_quant, nth, &m);  /* shape + weights; state below */
    else if (init) s = bn_train_model_from_dir(init, no_quant, nth, &m);
    else {
        char *txt; bn_config c;
        s = bn_read_file(config, &txt, NULL);
        if (!s) { s = bn_config_parse(txt, config, &c); free(txt); }
        if (!s) s = bn_train_model_new(&c, no_quant, nth, &m);
        if (!s) bn_train_model_init_random(m, (uint64_t)seed, 0.02f);
    }
    if (s) return cli_fail(resume ? "train --resume" : "train: model");
    bn_data *data = NULL, *val = NULL;
    if ((s = bn_data_open(data_path, m->cfg.vocab_size, B, T, &data))) { bn_train_model_free(m); return cli_fail("train: data"); }
    if (val_path && (s = bn_data_open(val_path, m->cfg.vocab_size, B, T, &val))) { bn_data_free(data); bn_train_model_free(m); return cli_fail("train: validation data"); }
    bn_trainer tr;
    int rc = 0;
    mrow *rows = NULL; int nrows = 0, caprows = 0;
    if ((s = bn_trainer_init(&tr, m, data, &oc, B, T, accum))) { rc = cli_fail("train"); goto done; }
    tr.rng = (uint64_t)seed;
    if (resume) {
        if ((s = bn_trainer_load(&tr, outdir))) { rc = cli_fail("train --resume"); goto done; }
        read_metrics(outdir, (int)tr.step + 1, &rows, &nrows, &caprows);
        fprintf(stderr, "resuming %s at step %lld\n", outdir, (long long)tr.step);
    }
    tr.dump_grads = dump;
    double fpt = bn_train_flops_per_token(m);
    fprintf(stderr, "model: %d layers, hidden %d, vocab %d, %.2fM parameters, %s, gemm %s, %d thread(s)\n",
            m->cfg.n_layers, m->cfg.hidden_size, m->cfg.vocab_size, m->n_params / 1e6,
            no_quant ? "full precision" : "quantization-aware (ternary weights, int8 activations)", bn_sgemm_isa(), nth);
    int64_t last_saved = tr.step;
    double tok_total = 0, sec_total = 0;
    while (tr.step < steps && !(stop_after && ran >= stop_after)) {
        bn_step_stats st;
        s = bn_trainer_step(&tr, &st);
        if (s) {
            fprintf(stderr, "bitnet: train: %s\n", bitnet_last_error());
            if (s == BITNET_ERR_NUMERIC) fprintf(stderr, "bitnet: train: stopped; the last good checkpoint in %s is from step %lld\n", outdir, (long long)last_saved);
            rc = 1; goto done;
        }
        tok_total += st.tokens; sec_total += st.seconds;
        double tps = st.tokens / st.seconds, avg = tok_total / sec_total;
        char eta[32]; fmt_eta((double)(steps - tr.step) * st.tokens / avg, eta, sizeof eta);
        printf("step %lld/%d | loss %.6f | lr %.3e | grad norm %.4f | %.0f tok/s | %.1f GFLOP/s | ETA %s\n",
               (long long)tr.step, steps, st.loss, st.lr, st.grad_norm, tps, fpt * tps / 1e9, eta);
        fflush(stdout);
        if (nrows == caprows) { caprows = caprows ? caprows * 2 : 256; mrow *q = realloc(rows, caprows * sizeof *q); if (!q) { rc = 1; goto done; } rows = q; }
        rows[nrows++] = (mrow){(int)tr.step, st.loss, NAN, st.lr, (float)tps};
        ran++;
        int last = tr.step == steps || ran == stop_after;
        if (val && ((eval_every > 0 && tr.step % eval_every == 0) || last)) {
            float vl;
            if ((s = bn_trainer_eval(&tr, val, eval_batches, &vl))) { rc = cli_fail("train: eval"); goto done; }
            rows[nrows - 1].val = vl;
            printf("eval step %lld | val_loss %.6f\n", (long long)tr.step, vl);
            fflush(stdout);
        }
        if ((val && ((eval_every > 0 && tr.step % eval_every == 0) || last)) || last) {
            if (!write_metrics(outdir, rows, nrows) || !write_svg(outdir, rows, nrows))
                fprintf(stderr, "bitnet: train: warning: cannot write metrics.csv/loss.svg in %s: %s\n", outdir, bitnet_last_error());
        }
        if ((save_every > 0 && tr.step % save_every == 0) || last) {
            if ((s = bn_trainer_save(&tr, outdir))) {
                fprintf(stderr, "bitnet: train: saving checkpoint at step %lld failed: %s\n", (long long)tr.step, bitnet_last_error());
                fprintf(stderr, "bitnet: train: the previous checkpoint in %s (step %lld) is intact\n", outdir, (long long)last_saved);
                rc = 1; goto done;
            }
            last_saved = tr.step;
        }
    }
    if (sec_total > 0) fprintf(stderr, "done: %lld steps, %.0f tokens/s average, checkpoint in %s\n", (long long)tr.step, tok_total / sec_total, outdir);
done:
    free(rows);
    bn_trainer_free(&tr);
    bn_data_free(data); bn_data_free(val);
    bn_train_model_free(m);
    return rc;
}
