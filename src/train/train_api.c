/* train_api.c — the public training API (include/bitnet_train.h) over the internal trainer:
 * bn_train_model (train.c), bn_data (data.c), bn_trainer (train_loop.c), the exporter and the
 * BPE trainer. It owns what the handles hold and translates parameters; no numerics here.
 * Not: a CLI (tools/cmd_train.c prints progress, draws loss.svg and keeps metrics.csv). */
#include "bitnet_train.h"
#include "train/train_loop.h"
#include "train/train_export.h"
#include "tokenizer/bpe_train.h"
#include "backend/cpu/gemm_f32.h"
#include "train/lora.h"
#include "train/sft.h"
#include "arch/arch.h"
#include "backend/backend.h"
#include <stdatomic.h>
#include <math.h>
#include <errno.h>
#include <sys/stat.h>

_Static_assert(BITNET_TRAIN_MAX_STEPS == BN_TRAIN_MAX_STEPS, "one step limit");

struct bitnet_trainer {
    bitnet_train_params p;
    bn_train_model *m;
    bn_lora *lora;          /* LoRA trainers: the adapters (attached to m) */
    char *base;             /* LoRA trainers: the base's path, for adapter_config.json */
    bn_data *data, *val;
    bn_trainer tr;
    int have_tr;
    bn_dist *dist;          /* data parallel (world_size >= 1): the communicator, owned */
    char *options;          /* owned copy of the caller's options text */
    char *dump;             /* owned path for the next step's gradients */
    atomic_int cancel;
    double tok_run, sec_run; /* tokens and seconds of the steps this trainer ran (progress) */
};

const char *bitnet_lr_schedule_name(bitnet_lr_schedule s) {
    return s >= BITNET_LR_CONSTANT && s <= BITNET_LR_TWO_STAGE ? bn_lr_sched_name((bn_lr_sched)s) : NULL;
}

int bitnet_lr_schedule_parse(const char *name, bitnet_lr_schedule *out) {
    bn_lr_sched s;
    if (!name || !bn_lr_sched_parse(name, &s)) return 0;
    *out = (bitnet_lr_schedule)s;
    return 1;
}

bitnet_train_params bitnet_train_default_params(void) {
    bn_optim_cfg c; bn_optim_cfg_default(&c);
    bitnet_train_params p = {
        .kernels = NULL, .n_threads = 0, .no_quant = 0, .batch = 4, .seq = 128, .accum = 1,
        .total_steps = 100, .seed = 1337, .init_std = 0.02f,
        .optim = {.lr = c.lr, .beta1 = c.beta1, .beta2 = c.beta2, .eps = c.eps, .weight_decay = c.wd,
                  .clip = c.clip, .schedule = (bitnet_lr_schedule)c.sched, .warmup = c.warmup,
                  .min_lr_frac = c.min_lr_frac, .stage2_frac = c.stage2_frac},
        .param_set = BITNET_TRAIN_ALL, .lora_rank = 8, .lora_alpha = 16.0f, .lora_dropout = 0.0f,
        .lora_targets = BITNET_LORA_Q | BITNET_LORA_V,
    };
    return p;
}

/* Every numeric field in range; the message names the field. */
static bitnet_status check_params(const bitnet_train_params *p) {
    const bitnet_optim_params *o = &p->optim;
    if (p->batch < 1 || p->seq < 1 || p->accum < 1) return bn_err(BITNET_ERR_ARG, "train: batch %d, seq %d and accum %d must be >= 1", p->batch, p->seq, p->accum);
    if (p->total_steps < 1 || p->total_steps > BN_TRAIN_MAX_STEPS) return bn_err(BITNET_ERR_ARG, "train: total_steps %lld must be in [1, %d]", (long long)p->total_steps, BN_TRAIN_MAX_STEPS);
    if (p->n_threads < 0 || p->n_threads > 1024) return bn_err(BITNET_ERR_ARG, "train: n_threads %d must be in [0, 1024]", p->n_threads);
    if (!(o->lr > 0 && o->lr < INFINITY)) return bn_err(BITNET_ERR_ARG, "train: lr %g must be a finite number > 0", o->lr);
    if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1)) return bn_err(BITNET_ERR_ARG, "train: betas %g, %g must be in [0, 1)", o->beta1, o->beta2);
    if (!(o->eps > 0 && o->eps < INFINITY)) return bn_err(BITNET_ERR_ARG, "train: eps %g must be a finite number > 0", o->eps);
    if (!(o->weight_decay >= 0 && o->weight_decay < INFINITY)) return bn_err(BITNET_ERR_ARG, "train: weight_decay %g must be a finite number >= 0", o->weight_decay);
    if (!(o->clip >= 0 && o->clip < INFINITY)) return bn_err(BITNET_ERR_ARG, "train: clip %g must be a finite number >= 0", o->clip);
    if (o->warmup < 0) return bn_err(BITNET_ERR_ARG, "train: warmup %d must be >= 0", o->warmup);
    if (!(o->min_lr_frac >= 0 && o->min_lr_frac <= 1) || !(o->stage2_frac > 0 && o->stage2_frac <= 1)) return bn_err(BITNET_ERR_ARG, "train: min_lr_frac must be in [0, 1] and stage2_frac in (0, 1]");
    if (o->schedule < BITNET_LR_CONSTANT || o->schedule > BITNET_LR_TWO_STAGE) return bn_err(BITNET_ERR_ARG, "train: unknown lr schedule %d", (int)o->schedule);
    if (!(p->init_std >= 0 && p->init_std < INFINITY)) return bn_err(BITNET_ERR_ARG, "train: init_std %g must be a finite number >= 0", p->init_std);
    if (p->precision < BITNET_TRAIN_PREC_DEFAULT || p->precision > BITNET_TRAIN_PREC_PARITY) return bn_err(BITNET_ERR_ARG, "train: unknown precision %d", (int)p->precision);
    if (p->param_set != BITNET_TRAIN_ALL && p->param_set != BITNET_TRAIN_LORA) return bn_err(BITNET_ERR_ARG, "train: unknown param_set %d", (int)p->param_set);
    if (p->world_size < 0 || p->world_size > 65536 || (p->world_size ? p->rank < 0 || p->rank >= p->world_size : p->rank != 0))
        return bn_err(BITNET_ERR_ARG, "train: rank %d of world_size %d: need 0 <= rank < world_size (world_size 0: alone, rank 0)", p->rank, p->world_size);
    if (p->world_size > 0 && p->batch % p->world_size)
        return bn_err(BITNET_ERR_ARG, "train: batch %d is not a multiple of world_size %d (batch is the global micro-batch, split over the ranks)", p->batch, p->world_size);
    if (p->world_size > 0 && (!p->dist_id_path || !*p->dist_id_path)) return bn_err(BITNET_ERR_ARG, "train: data-parallel training needs dist_id_path");
    if (p->param_set == BITNET_TRAIN_LORA) {
        if (p->lora_rank < 1 || p->lora_rank > 65536) return bn_err(BITNET_ERR_ARG, "train: lora_rank %d must be in [1, 65536]", p->lora_rank);
        if (!(p->lora_alpha > 0 && p->lora_alpha < INFINITY)) return bn_err(BITNET_ERR_ARG, "train: lora_alpha %g must be a finite number > 0", p->lora_alpha);
        if (!(p->lora_dropout >= 0 && p->lora_dropout < 1)) return bn_err(BITNET_ERR_ARG, "train: lora_dropout %g must be in [0, 1)", p->lora_dropout);
        if (p->lora_targets > 127u) return bn_err(BITNET_ERR_ARG, "train: lora_targets 0x%x has bits outside BITNET_LORA_*", p->lora_targets);
    }
    return BITNET_OK;
}

static bn_optim_cfg optim_cfg(const bitnet_train_params *p) {
    bn_optim_cfg c; bn_optim_cfg_default(&c);
    const bitnet_optim_params *o = &p->optim;
    c.lr = o->lr; c.beta1 = o->beta1; c.beta2 = o->beta2; c.eps = o->eps; c.wd = o->weight_decay; c.clip = o->clip;
    c.sched = (bn_lr_sched)o->schedule; c.warmup = o->warmup; c.min_lr_frac = o->min_lr_frac; c.stage2_frac = o->stage2_frac;
    c.total_steps = (int)p->total_steps;
    return c;
}

static const bn_slot lora_slot[7] = {BN_S_Q, BN_S_K, BN_S_V, BN_S_O, BN_S_GATE, BN_S_UP, BN_S_DOWN};

bitnet_status bitnet_lora_parse_targets(const char *list, unsigned *mask) {
    unsigned sl; char err[160];
    *mask = 0;
    if (!list || !bn_lora_parse_targets(list, &sl, err, sizeof err)) return bn_err(BITNET_ERR_ARG, "%s", list ? err : "no LoRA targets given");
    for (int i = 0; i < 7; i++) if (sl & (1u << lora_slot[i])) *mask |= 1u << i;
    return BITNET_OK;
}

/* Freeze t->m and attach fresh adapters as t->p says. */
static bitnet_status attach_lora(bitnet_trainer *t, const char *from) {
    unsigned sl = 0, pub = t->p.lora_targets ? t->p.lora_targets : 127u;
    for (int i = 0; i < 7; i++) if (pub & (1u << i)) sl |= 1u << lora_slot[i];
    bitnet_status s = bn_train_model_freeze(t->m);
    if (!s) s = bn_lora_new(t->m, t->p.lora_rank, t->p.lora_alpha, sl, t->p.seed, &t->lora);
    if (!s && !(t->base = strdup(from))) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) t->m->lora = t->lora;
    return s;
}

/* Move t's model onto the device named dev (backend.h bn_backend_pick names). */
static bitnet_status to_device(bitnet_trainer *t, const char *dev) {
    const bn_backend *be; int idx;
    bitnet_status s = bn_backend_pick(dev, &be, &idx);
    if (s) return s;
    if (be->device != BN_DEV_CUDA) return BITNET_OK;
    if (t->lora) return bn_err(BITNET_ERR_UNSUPPORTED, "train: LoRA training runs on the CPU only (not on device %s)", dev);
#ifdef BN_CUDA
    s = bn_train_cuda_attach(t->m, idx, (int)t->p.precision);
    if (s || t->p.world_size < 1) return s;
#ifdef BN_NCCL
    return bn_dist_nccl_new(t->m, t->p.rank, t->p.world_size, idx, t->p.dist_id_path, 300.0, &t->dist);
#else
    return bn_err(BITNET_ERR_UNSUPPORTED, "train: data-parallel training: this build has no NCCL (make CUDA=1 with NCCL)");
#endif
#else
    return bn_err(BITNET_ERR_UNSUPPORTED, "train: device %s: this build has no CUDA (make CUDA=1)", dev);
#endif
}

bitnet_status bitnet_trainer_new(const char *from, const bitnet_train_params *pp, bitnet_trainer **out) {
    *out = NULL;
    bitnet_train_params p = pp ? *pp : bitnet_train_default_params();
    bitnet_status s = check_params(&p);
    if (s) return s;
    if (!from) return bn_err(BITNET_ERR_ARG, "train: no model folder or config.json given");
    bitnet_trainer *t = calloc(1, sizeof *t);
    if (!t) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    t->p = p;
    int nth = p.n_threads > 0 ? p.n_threads : bn_physical_cores();
    if (bn_is_dir(from) && p.param_set == BITNET_TRAIN_LORA) s = bn_train_model_from_dir_frozen(from, p.no_quant, nth, p.kernels, &t->m);
    else if (bn_is_dir(from)) s = bn_train_model_from_dir_ex(from, p.no_quant, nth, p.kernels, &t->m);
    else {
        char *txt = NULL; bn_config c;
        s = bn_read_file(from, &txt, NULL);
        if (!s) { s = bn_config_parse(txt, from, &c); free(txt); }
        if (!s) s = bn_train_model_new_ex(&c, p.no_quant, nth, p.kernels, &t->m);
        if (!s) bn_train_model_init_random(t->m, p.seed, p.init_std);
    }
    if (!s && p.param_set == BITNET_TRAIN_LORA) s = attach_lora(t, from);
    if (!s && p.device && *p.device && strcmp(p.device, "cpu")) s = to_device(t, p.device);
    if (!s && p.world_size > 0 && !t->dist) s = bn_err(BITNET_ERR_UNSUPPORTED, "train: data-parallel training (world_size %d) needs device cuda", p.world_size);
    if (!s && t->lora) s = bn_lora_set_dropout(t->lora, p.lora_dropout);
    if (!s) bn_train_set_grad_checkpoint(t->m, p.grad_checkpoint);
    if (s) { bitnet_trainer_free(t); return s; }
    *out = t;
    return BITNET_OK;
}

void bitnet_trainer_free(bitnet_trainer *t) {
    if (!t) return;
    if (t->have_tr) bn_trainer_free(&t->tr);
    bn_data_free(t->data); bn_data_free(t->val);
    bn_train_model_free(t->m);
    if (t->dist) t->dist->free(t->dist);
    bn_lora_free(t->lora); free(t->base);
    free(t->options); free(t->dump);
    free(t);
}

/* This rank's share of the global micro-batch. */
static int rank_batch(const bitnet_train_params *p) { return p->world_size > 1 ? p->batch / p->world_size : p->batch; }

/* Take d (training) and v (validation, may be NULL), owned from here on, make them this rank's
 * shards, and (re)build the loop. */
static bitnet_status install_data(bitnet_trainer *t, bn_data *d, bn_data *v) {
    const bitnet_train_params *p = &t->p;
    bitnet_status s = bn_data_shuffle(d, p->seed);
    if (!s && t->dist) s = bn_data_set_shard(d, p->rank, p->world_size);
    if (!s && t->dist && v && (s = bn_data_set_shard(v, p->rank, p->world_size))) bn_err_prefix(s, "validation data: ");
    if (s) { bn_data_free(d); bn_data_free(v); return s; }
    if (t->have_tr) { bn_trainer_free(&t->tr); t->have_tr = 0; }
    bn_data_free(t->data); bn_data_free(t->val);
    t->data = d; t->val = v;
    bn_optim_cfg oc = optim_cfg(p);
    s = bn_trainer_init(&t->tr, t->m, t->data, &oc, rank_batch(p), p->seq, p->accum);
    if (s) return s;
    t->have_tr = 1;
    t->tr.dist = t->dist;
    t->tr.rng = p->seed;
    t->tr.options = t->options;
    t->tr.base_name = t->base;
    return BITNET_OK;
}

bitnet_status bitnet_trainer_set_data(bitnet_trainer *t, const char *train_path, const char *val_path) {
    const bitnet_train_params *p = &t->p;
    int V = t->m->cfg.vocab_size;
    bn_data *d = NULL, *v = NULL;
    if (!train_path) return bn_err(BITNET_ERR_ARG, "train: no training data given");
    bitnet_status s = bn_data_open(train_path, V, rank_batch(p), p->seq, &d);
    if (!s && val_path) s = bn_err_prefix(bn_data_open(val_path, V, rank_batch(p), p->seq, &v), "validation data: ");
    if (s) { bn_data_free(d); bn_data_free(v); return s; }
    return install_data(t, d, v);
}

bitnet_status bitnet_trainer_set_data_tokens(bitnet_trainer *t, const int32_t *ids, const uint8_t *mask, size_t n,
                                             const int32_t *val_ids, const uint8_t *val_mask, size_t n_val) {
    const bitnet_train_params *p = &t->p;
    int V = t->m->cfg.vocab_size;
    bn_data *d = NULL, *v = NULL;
    bitnet_status s = bn_data_from_tokens("training tokens", ids, mask, n, V, rank_batch(p), p->seq, &d);
    if (!s && val_ids) s = bn_data_from_tokens("validation tokens", val_ids, val_mask, n_val, V, rank_batch(p), p->seq, &v);
    if (s) { bn_data_free(d); bn_data_free(v); return s; }
    return install_data(t, d, v);
}

bitnet_status bitnet_sft_load_jsonl(const char *path, const bitnet_tokenizer *tok, bitnet_chat_template tmpl,
                                    int32_t **ids, uint8_t **mask, size_t *n, int64_t *n_examples) {
    bn_sft_stats st;
    if (!path || !ids || !mask || !n) return bn_err(BITNET_ERR_ARG, "sft: a path and the ids, mask and n outputs are needed");
    bitnet_status s = bn_sft_load_jsonl(path, tok, tmpl, ids, mask, n, &st);
    if (n_examples) *n_examples = s ? 0 : st.examples;
    return s;
}

static bitnet_status need_data(const bitnet_trainer *t) {
    return t->have_tr ? BITNET_OK : bn_err(BITNET_ERR_ARG, "train: no training data set (bitnet_trainer_set_data)");
}

bitnet_status bitnet_trainer_reseed(bitnet_trainer *t, uint64_t seed) {
    bitnet_status s = need_data(t);
    if (s) return s;
    size_t pos = t->data->pos;
    if ((s = bn_data_shuffle(t->data, seed))) return s;
    t->data->pos = pos;
    t->tr.rng = seed; t->p.seed = seed;
    return BITNET_OK;
}

bitnet_status bitnet_trainer_step(bitnet_trainer *t, bitnet_train_stats *st) {
    bitnet_status s = need_data(t);
    if (s) return s;
    bn_step_stats ss;
    t->tr.dump_grads = t->dump;
    t->tr.stop = atomic_load(&t->cancel);
    s = bn_trainer_step(&t->tr, &ss);
    if (t->tr.stop) atomic_store(&t->cancel, 1);   /* data parallel: some rank was cancelled */
    if (!t->tr.dump_grads) { free(t->dump); t->dump = NULL; }
    if (st) {
        memset(st, 0, sizeof *st);
        st->loss = ss.loss; st->lr = ss.lr; st->weight_decay = ss.wd; st->grad_norm = ss.grad_norm;
        st->seconds = ss.seconds; st->tokens = ss.tokens;
    }
    if (!s) {
        t->tok_run += (double)ss.tokens; t->sec_run += ss.seconds;
        if (t->p.progress) {
            double avg = t->sec_run > 0 ? t->tok_run / t->sec_run : 0;
            bitnet_train_progress pr = {
                .step = t->tr.step, .total_steps = t->p.total_steps, .loss = ss.loss, .lr = ss.lr,
                .grad_norm = ss.grad_norm, .seconds = ss.seconds,
                .tokens_per_s = ss.seconds > 0 ? (double)ss.tokens / ss.seconds : 0, .avg_tokens_per_s = avg,
                .eta_s = avg > 0 && t->p.total_steps > t->tr.step ? (double)(t->p.total_steps - t->tr.step) * (double)ss.tokens / avg : 0,
            };
            t->p.progress(t->p.progress_ud, &pr);
        }
    }
    return s;
}

bitnet_status bitnet_trainer_eval(bitnet_trainer *t, int n_batches, float *val_loss) {
    bitnet_status s = need_data(t);
    if (s) return s;
    if (!t->val) return bn_err(BITNET_ERR_ARG, "train: no validation data set");
    return bn_trainer_eval(&t->tr, t->val, n_batches, val_loss);
}

bitnet_status bitnet_trainer_save(const bitnet_trainer *t, const char *dir) {
    bitnet_status s = need_data(t);
    return s ? s : bn_trainer_save(&t->tr, dir);
}

bitnet_status bitnet_trainer_load_state(bitnet_trainer *t, const char *dir) {
    bitnet_status s = need_data(t);
    return s ? s : bn_trainer_load(&t->tr, dir);
}

bitnet_status bitnet_trainer_set_options_text(bitnet_trainer *t, const char *text) {
    char *c = text ? strdup(text) : NULL;
    if (text && !c) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    free(t->options);
    t->options = c;
    t->tr.options = c;
    return BITNET_OK;
}

bitnet_status bitnet_trainer_read_options_text(const char *dir, char **text) {
    return bn_trainer_read_options(dir, text);
}

/* FNV-1a over n floats' bytes, continuing h. */
static uint64_t fnv(uint64_t h, const float *x, size_t n) {
    const unsigned char *b = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof(float); i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}

bitnet_status bitnet_trainer_check_replicas(bitnet_trainer *t) {
    if (!t->dist) return BITNET_OK;
    bn_train_model *m = t->m;
    bitnet_status s = m->ops->sync ? m->ops->sync(m, 1) : BITNET_OK;
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(fnv(fnv(h, m->params, m->n_params), m->adam_m, m->n_params), m->adam_v, m->n_params);
    uint64_t *all = malloc((size_t)t->dist->world * sizeof *all);
    if (!all) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    bitnet_status c = t->dist->gather_u64(t->dist, s ? 0 : h, all);   /* always joins the collective */
    if (!s) s = c;
    for (int r = 1; r < t->dist->world && !s; r++)
        if (all[r] != all[0]) s = bn_err(BITNET_ERR_NUMERIC, "data parallel: rank %d's parameters or AdamW moments differ from rank 0's (hash %016llx vs %016llx)",
                                         r, (unsigned long long)all[r], (unsigned long long)all[0]);
    free(all);
    return s;
}

bitnet_status bitnet_trainer_dump_next_grads(bitnet_trainer *t, const char *path) {
    char *c = path ? strdup(path) : NULL;
    if (path && !c) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    free(t->dump);
    t->dump = c;
    return BITNET_OK;
}

void bitnet_trainer_cancel(bitnet_trainer *t) { atomic_store(&t->cancel, 1); }
int bitnet_trainer_cancelled(const bitnet_trainer *t) { return atomic_load(&((bitnet_trainer *)t)->cancel); }

int64_t bitnet_trainer_get_step(const bitnet_trainer *t) { return t->have_tr ? t->tr.step : 0; }

void bitnet_trainer_get_info(const bitnet_trainer *t, bitnet_trainer_info *i) {
    memset(i, 0, sizeof *i);
    const bn_train_model *m = t->m;
    i->step = bitnet_trainer_get_step(t);
    i->n_params = (int64_t)(t->lora ? t->lora->n_params : m->n_params);
    i->n_base_params = 0;   /* every tensor, also those a packed frozen base keeps outside params (m->fz) */
    for (int k = 0; k < m->n_tp; k++) i->n_base_params += (int64_t)((m->tp[k].numel + 15) & ~(size_t)15);
    i->flops_per_token = bn_train_flops_per_token(m);
    if (t->lora)   /* frozen base: forward + dX (4N, no dW), plus 6 x the adapters */
        i->flops_per_token = i->flops_per_token * 4.0 / 6.0 + 6.0 * (double)t->lora->n_params;
    i->vocab_size = m->cfg.vocab_size; i->hidden_size = m->cfg.hidden_size; i->n_layers = m->cfg.n_layers;
    i->full_precision = m->cfg.full_precision;
    i->gemm = m->gpu ? "cublas" : m->k->sgemm->name;
    if (t->dist) { i->rank = t->dist->rank; i->world_size = t->dist->world; }
}

bitnet_status bitnet_export_packed(const char *master_dir, const char *out_dir, int flags) {
    bn_config c;
    bitnet_status s = bn_config_load(master_dir, &c);
    if (s) return s;
    if (c.full_precision && !(flags & BITNET_EXPORT_ALLOW_FULL_PRECISION))
        return bn_err(BITNET_ERR_ARG, "%s is a full-precision checkpoint (trained with --no-quant): packing ternarizes it, "
                      "which changes the model it learned", master_dir);
    return bn_export_packed(master_dir, out_dir);
}

bitnet_status bitnet_export_merge_lora(const char *master_dir, const char *lora_dir, float scale, const char *out_dir) {
    if (!master_dir || !lora_dir || !out_dir) return bn_err(BITNET_ERR_ARG, "merge-lora: master folder, adapter folder and output folder are all needed");
    if (!isfinite(scale)) return bn_err(BITNET_ERR_ARG, "merge-lora: scale %g is not finite", scale);
    bn_train_model *m = NULL; bn_lora *l = NULL;
    bitnet_status s = bn_train_model_from_dir(master_dir, 1, 1, &m);   /* no_quant: the float master, no wq */
    if (!s) s = bn_lora_load(m, lora_dir, &l);
    float *ba = NULL;
    for (int i = 0; !s && i < m->n_tp; i++) {
        int a = l->ad_of[i];
        if (a < 0) continue;
        const bn_tparam *A = &l->tp[a], *B = &l->tp[a + 1], *W = &m->tp[i];
        free(ba);
        if (!(ba = malloc(W->numel * sizeof(float)))) { s = bn_err(BITNET_ERR_NOMEM, "out of memory"); break; }
        bn_sgemm_mt(m->k, m->pool, m->ws, 0, 0, (int)W->shape[0], (int)W->shape[1], l->rank, l->params + B->off, l->rank, l->params + A->off, (int)W->shape[1], 0, ba, (int)W->shape[1]);
        float k = scale * l->scale;
        for (size_t j = 0; j < W->numel; j++) m->params[W->off + j] += k * ba[j];
    }
    free(ba);
    if (!s) {
        int fp = m->cfg.full_precision;
        m->no_quant = fp;   /* keep the master's own label (no_quant was only for loading) */
        if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) s = bn_err(BITNET_ERR_IO, "%s: cannot create directory: %s", out_dir, strerror(errno));
        if (!s) s = bn_train_save_weights(m, out_dir);
        if (!s) s = bn_copy_tokenizer_files(master_dir, out_dir, NULL);
    }
    bn_lora_free(l); bn_train_model_free(m);
    return s;
}

bitnet_status bitnet_copy_tokenizer_files(const char *src_dir, const char *dst_dir, int *n_copied) {
    int n = 0;
    bitnet_status s = bn_copy_tokenizer_files(src_dir, dst_dir, &n);
    if (n_copied) *n_copied = n;
    return s;
}

bitnet_bpe_params bitnet_bpe_default_params(void) {
    bitnet_bpe_params p = {.vocab_size = 0, .specials = NULL, .n_specials = 0, .bos = NULL, .min_frequency = 2};
    return p;
}

bitnet_status bitnet_bpe_train(const char *const *texts, const size_t *lens, int n, const bitnet_bpe_params *p,
                               const char *out_path, int *n_merges) {
    bn_bpe_train_params q = {.vocab_size = p->vocab_size, .specials = (const char **)p->specials, .n_specials = p->n_specials,
                             .bos = p->bos, .min_frequency = p->min_frequency, .progress = p->progress, .ud = p->progress_ud};
    int nm = 0;
    bitnet_status s = bn_bpe_train(texts, lens, n, &q, out_path, &nm);
    if (n_merges) *n_merges = nm;
    return s;
}
