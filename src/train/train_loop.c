/* train_loop.c — optimizer steps, evaluation and checkpoints (see train_loop.h). */
#include "train/train_loop.h"
#include "backend/backend.h"
#include "io/safetensors.h"
#include "train/lora.h"
#include <math.h>
#include <stdio.h>
#include <errno.h>
#include <sys/stat.h>

#define STATE_VERSION 2

bitnet_status bn_trainer_init(bn_trainer *t, bn_train_model *m, bn_data *data, const bn_optim_cfg *opt, int B, int T, int accum) {
    memset(t, 0, sizeof *t);
    if (B < 1 || T < 1 || accum < 1) return bn_err(BITNET_ERR_ARG, "batch %d, seq %d, accum %d must all be >= 1", B, T, accum);
    if (T > m->cfg.max_pos) return bn_err(BITNET_ERR_ARG, "seq %d exceeds the model's max_position_embeddings %d", T, m->cfg.max_pos);
    if ((int64_t)B * T > INT32_MAX) return bn_err(BITNET_ERR_ARG, "batch %d x seq %d = %lld tokens is more than %d per step", B, T, (long long)B * T, INT32_MAX);
    t->m = m; t->data = data; t->opt = *opt; t->B = B; t->T = T; t->accum = accum;
    t->in = malloc((size_t)B * T * sizeof(int32_t)); t->tg = malloc((size_t)B * T * sizeof(int32_t));
    if (!t->in || !t->tg) { bn_trainer_free(t); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    return BITNET_OK;
}

void bn_trainer_free(bn_trainer *t) { free(t->in); free(t->tg); t->in = t->tg = NULL; }

static int world(const bn_trainer *t) { return t->dist ? t->dist->world : 1; }

static int decays(const bn_tparam *p) { return p->kind == BN_PK_LINEAR || p->kind == BN_PK_HEAD; }

/* What the optimizer trains: the model's parameters, or its LoRA adapters (every adapter matrix
 * decays, as transformers' Trainer decays every non-bias, non-norm parameter). */
typedef struct { int n_tp; const bn_tparam *tp; float *p, *g, *m, *v; size_t n; } pview;
static pview view(const bn_train_model *m) {
    const bn_lora *l = m->lora;
    if (l) return (pview){l->n_tp, l->tp, l->params, l->grads, l->adam_m, l->adam_v, l->n_params};
    return (pview){m->n_tp, m->tp, m->params, m->grads, m->adam_m, m->adam_v, m->n_params};
}
static bitnet_status save_view(const pview *v, const float *buf, const char *path) {
    bn_st_writer *w;
    bitnet_status s = bn_st_writer_new(&w);
    for (int i = 0; i < v->n_tp && !s; i++) s = bn_st_writer_add(w, v->tp[i].name, BN_F32, v->tp[i].ndim, v->tp[i].shape, buf + v->tp[i].off);
    if (!s) s = bn_st_writer_save(w, path);
    if (w) bn_st_writer_free(w);
    return s;
}

/* The optimizer part of a step on a device backend (ops grad_norm and adamw): the same norm,
 * clipping rule, schedule and AdamW as below, on the device copies. */
static bitnet_status device_update(bn_trainer *t, bn_step_stats *st, double t0) {
    bn_train_model *m = t->m;
    st->grad_norm = m->ops->grad_norm(m);
    bitnet_status s = m->ops->status(m);
    if (s) return s;
    if (!isfinite(st->grad_norm))
        return bn_err(BITNET_ERR_NUMERIC, "step %lld: gradient norm is %g (not finite); parameters not updated", (long long)t->step, st->grad_norm);
    float coef = 1.0f;
    if (t->opt.clip > 0) {  /* torch clip_grad_norm_ */
        double c = t->opt.clip / (st->grad_norm + 1e-6);
        if (c < 1.0) coef = (float)c;
    }
    bn_optim_schedule(&t->opt, t->step, &st->lr, &st->wd);
    m->ops->adamw(m, coef, st->lr, t->opt.beta1, t->opt.beta2, t->opt.eps, st->wd, t->step + 1);
    if ((s = m->ops->status(m))) return s;
    t->step++;
    st->tokens = (int64_t)t->B * t->T * t->accum * world(t);
    st->seconds = bn_time() - t0;
    return BITNET_OK;
}

/* Data parallel, after this rank's micro-batches (s: their status): the mean loss, the stop
 * requests and the failures summed over the ranks, then (no rank failed) the gradient mean.
 * A rank whose own micro-batches succeeded fails with BITNET_ERR_NUMERIC when another's did
 * not, so every rank skips the same steps. */
static bitnet_status dist_combine(bn_trainer *t, bitnet_status s, bn_step_stats *st) {
    bn_dist *d = t->dist;
    double v[3] = {st->loss, t->stop ? 1.0 : 0.0, s ? 1.0 : 0.0};
    bitnet_status c = d->sum(d, v, 3);
    if (c) return c;
    st->loss = (float)(v[0] / d->world);
    t->stop = v[1] > 0;
    if (s) return s;
    if (v[2] > 0) return bn_err(BITNET_ERR_NUMERIC, "step %lld: %.0f other rank(s) failed (see their messages); parameters not updated", (long long)t->step, v[2]);
    return d->grad_mean(d, t->m);
}

bitnet_status bn_trainer_step(bn_trainer *t, bn_step_stats *st) {
    bn_train_model *m = t->m;
    double t0 = bn_time();
    memset(st, 0, sizeof *st);
    size_t save_pos = t->data->pos;
    bn_train_zero_grad(m);
    double lsum = 0;
    bitnet_status s = BITNET_OK;
    for (int k = 0; k < t->accum && !s; k++) {
        float loss = 0;
        s = bn_data_next(t->data, t->in, t->tg);
        if (m->lora) { m->lora->drop_on = 1; m->lora->drop_key = (uint64_t)t->step * (uint64_t)t->accum + (uint64_t)k; }   /* a resumed run draws the same masks */
        if (!s) s = bn_train_forward(m, t->in, t->tg, t->B, t->T, &loss);
        if (!s) s = bn_train_backward(m, 1.0f / (float)t->accum);
        if (m->lora) m->lora->drop_on = 0;   /* evaluation: no dropout */
        lsum += loss;
    }
    st->loss = (float)(lsum / t->accum);
    if (s == BITNET_ERR_NUMERIC) s = bn_err(s, "step %lld: loss is %g (not finite); parameters not updated", (long long)t->step, st->loss);
    if (t->dist) s = dist_combine(t, s, st);
    if (s) { t->data->pos = save_pos; return s; }
    if (t->dump_grads) {
        pview dv = view(m);
        if (m->ops->sync) s = m->ops->sync(m, 1);   /* device gradients to the host */
        if (!s) s = save_view(&dv, dv.g, t->dump_grads);
        t->dump_grads = NULL;
        if (s) { t->data->pos = save_pos; return s; }
    }
    pview pv = view(m);
    if (m->ops->adamw) {
        if ((s = device_update(t, st, t0))) t->data->pos = save_pos;
        return s;
    }
    st->grad_norm = bn_grad_norm(m->pool, pv.g, pv.n);
    if (!isfinite(st->grad_norm)) {
        t->data->pos = save_pos;
        return bn_err(BITNET_ERR_NUMERIC, "step %lld: gradient norm is %g (not finite); parameters not updated", (long long)t->step, st->grad_norm);
    }
    if (t->opt.clip > 0) {  /* torch clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to 1 */
        double coef = t->opt.clip / (st->grad_norm + 1e-6);
        if (coef < 1.0) bn_grad_scale(m->pool, pv.g, pv.n, (float)coef);
    }
    bn_optim_schedule(&t->opt, t->step, &st->lr, &st->wd);
    for (int i = 0; i < pv.n_tp; i++) {
        const bn_tparam *p = &pv.tp[i];
        bn_adamw_update(m->k, m->pool, pv.p + p->off, pv.g + p->off, pv.m + p->off, pv.v + p->off, p->numel,
                        st->lr, t->opt.beta1, t->opt.beta2, t->opt.eps, decays(p) ? st->wd : 0.0f, t->step + 1);
    }
    t->step++;
    st->tokens = (int64_t)t->B * t->T * t->accum * world(t);
    st->seconds = bn_time() - t0;
    return BITNET_OK;
}

bitnet_status bn_trainer_eval(bn_trainer *t, bn_data *val, int n, float *loss) {
    val->pos = 0;
    double sum = 0, cnt = 0;   /* weighted by the targets that count (masked data: fewer) */
    if (n < 1) n = 1;
    bitnet_status s = BITNET_OK;
    for (int k = 0; k < n && !s; k++) {
        float l;
        s = bn_data_next(val, t->in, t->tg);
        if (!s) s = bn_train_forward(t->m, t->in, t->tg, t->B, t->T, &l);
        if (!s) { sum += (double)l * t->m->n_targets; cnt += t->m->n_targets; }
    }
    if (t->dist) {   /* every rank's shard: the mean over all their targets */
        double v[3] = {sum, cnt, s ? 1.0 : 0.0};
        bitnet_status c = t->dist->sum(t->dist, v, 3);
        if (!s && !c && v[2] > 0) s = bn_err(BITNET_ERR_NUMERIC, "another rank failed (see its message)");
        if (!s) s = c;
        sum = v[0]; cnt = v[1];
    }
    if (s) return bn_err_prefix(s, "validation");
    *loss = cnt > 0 ? (float)(sum / cnt) : 0.0f;
    return BITNET_OK;
}

bitnet_status bn_trainer_save(const bn_trainer *t, const char *dir) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return bn_err(BITNET_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    const bn_train_model *m = t->m;
    bn_st_writer *w;
    bitnet_status s = m->ops->sync ? m->ops->sync(t->m, 1) : BITNET_OK;   /* device state to the host arrays */
    if (s || (s = bn_st_writer_new(&w))) return s;
    char nm[128];
    static const char *pre[3] = {"param.", "adam_m.", "adam_v."};
    pview pv = view(m);
    const float *buf[3] = {pv.p, pv.m, pv.v};
    for (int k = 0; k < 3 && !s; k++)
        for (int i = 0; i < pv.n_tp && !s; i++) {
            snprintf(nm, sizeof nm, "%s%s", pre[k], pv.tp[i].name);
            s = bn_st_writer_add(w, nm, BN_F32, pv.tp[i].ndim, pv.tp[i].shape, buf[k] + pv.tp[i].off);
        }
    int64_t state[8] = {STATE_VERSION, t->step, (int64_t)t->data->pos, (int64_t)t->rng, (int64_t)t->B * world(t), t->T, (int64_t)pv.n, t->accum};
    int64_t sh[1] = {8};
    if (!s) s = bn_st_writer_add(w, "trainer_state", BN_I64, 1, sh, state);
    if (!s && t->options) {
        int64_t on[1] = {(int64_t)strlen(t->options)};
        if (on[0] > 0) s = bn_st_writer_add(w, "train_options", BN_U8, 1, on, t->options);
    }
    char *sp = bn_path_join(dir, "train_state.safetensors");
    if (!s) s = sp ? bn_st_writer_save(w, sp) : bn_err(BITNET_ERR_NOMEM, "out of memory");
    free(sp);
    bn_st_writer_free(w);
    if (!s) s = m->lora ? bn_lora_save(m->lora, dir, t->base_name) : bn_train_save_weights(m, dir);
    return s;
}

bitnet_status bn_trainer_load(bn_trainer *t, const char *dir) {
    bn_train_model *m = t->m;
    char *sp = bn_path_join(dir, "train_state.safetensors");
    if (!sp) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    bn_st *st;
    bitnet_status s = bn_st_open(sp, &st);
    free(sp);
    if (s) return s;
    const bn_tensor *ts;
    int64_t sh8[1] = {8};
    s = bn_st_get(st, "trainer_state", 1u << BN_I64, 1, sh8, &ts);
    int64_t state[8] = {0};
    if (!s) {
        memcpy(state, ts->data, sizeof state);
        const char *f = ts->file;
        long long v[8]; for (int i = 0; i < 8; i++) v[i] = (long long)state[i];
        int64_t gB = (int64_t)t->B * world(t);       /* the global batch (data parallel: every rank's) */
        int64_t per = gB * t->accum;                  /* windows per step when shuffled */
        if (state[0] == 1) s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: trainer_state version 1 is from an older bitnet (contiguous data order); resume it with that version, or start a new run from its weights with --init", f);
        else if (state[0] != STATE_VERSION) s = bn_err(BITNET_ERR_FORMAT, "%s: trainer_state version %lld is not %d", f, v[0], STATE_VERSION);
        else if (state[1] < 0 || state[1] > BN_TRAIN_MAX_STEPS) s = bn_err(BITNET_ERR_FORMAT, "%s: trainer_state step %lld is outside [0, %d]", f, v[1], BN_TRAIN_MAX_STEPS);
        else if (state[4] != gB) s = bn_err(BITNET_ERR_FORMAT, "%s: trainer_state batch %lld is not this run's %lld", f, v[4], (long long)gB);
        else if (state[5] != t->T) s = bn_err(BITNET_ERR_FORMAT, "%s: trainer_state seq %lld is not this run's %d", f, v[5], t->T);
        else if (state[7] != t->accum) s = bn_err(BITNET_ERR_FORMAT, "%s: trainer_state accum %lld is not this run's %d", f, v[7], t->accum);
        else if (state[6] < 0 || (uint64_t)state[6] != view(m).n) s = bn_err(BITNET_ERR_FORMAT, "%s: trainer_state n_params %lld is not the %s's %zu", f, v[6], m->lora ? "adapters" : "model", view(m).n);
        else if (t->data->shuffled ? (state[2] < 0 || state[2] % per || state[2] / per != state[1]) : (state[2] < 0 || (uint64_t)state[2] > t->data->n))
            s = bn_err(BITNET_ERR_FORMAT, "%s: trainer_state data position %lld does not fit step %lld (batch %lld, accum %d, %zu tokens)", f, v[2], v[1], (long long)gB, t->accum, t->data->n);
    }
    char nm[128];
    static const char *pre[3] = {"param.", "adam_m.", "adam_v."};
    pview pv = view(m);
    float *buf[3] = {pv.p, pv.m, pv.v};
    for (int k = 0; k < 3 && !s; k++)
        for (int i = 0; i < pv.n_tp && !s; i++) {
            const bn_tensor *x;
            snprintf(nm, sizeof nm, "%s%s", pre[k], pv.tp[i].name);
            s = bn_st_get(st, nm, 1u << BN_F32, pv.tp[i].ndim, pv.tp[i].shape, &x);
            if (!s) memcpy(buf[k] + pv.tp[i].off, x->data, pv.tp[i].numel * sizeof(float));
        }
    if (!s && m->ops->sync) s = m->ops->sync(m, 0);   /* the loaded state to the device */
    if (!s) {
        t->step = state[1]; t->rng = (uint64_t)state[3];
        if (t->data->shuffled) s = bn_data_shuffle(t->data, t->rng);
        t->data->pos = (size_t)state[2];
    }
    bn_st_free(st);
    return s;
}

bitnet_status bn_trainer_read_options(const char *dir, char **options) {
    *options = NULL;
    char *sp = bn_path_join(dir, "train_state.safetensors");
    if (!sp) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    struct stat sb;
    if (stat(sp, &sb) != 0) { free(sp); return bn_err(BITNET_ERR_IO, "no checkpoint in %s (no train_state.safetensors)", dir); }
    bn_st *st;
    bitnet_status s = bn_st_open(sp, &st);
    free(sp);
    if (s) return s;
    const bn_tensor *x = bn_st_find(st, "train_options");
    if (x && (x->dtype != BN_U8 || x->ndim != 1)) s = bn_err(BITNET_ERR_FORMAT, "%s: train_options is not a U8 vector", x->file);
    else if (x) {
        char *o = malloc(x->nbytes + 1);
        if (!o) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
        else { memcpy(o, x->data, x->nbytes); o[x->nbytes] = 0; *options = o; }
    }
    bn_st_free(st);
    return s;
}
