/* train_loop.h — one training run: model + data + AdamW state, optimizer steps with gradient
 * accumulation and clipping, evaluation, and checkpoints that resume bit-exactly.
 *
 * Checkpoint in OUTDIR (every file written to a temp file and renamed):
 *   config.json, model.safetensors   master weights, float32, HF names (for inference/export)
 *   train_state.safetensors          self-contained resume state: "param.<name>", "adam_m.<name>",
 *                                    "adam_v.<name>" (float32), "trainer_state" (I64[8]:
 *                                    version, step, data position, rng = the data order's seed,
 *                                    B, T, n_params, accum) and, when the caller set options,
 *                                    "train_options" (U8[n]: the caller's text, e.g. the CLI's
 *                                    options as JSON, stored verbatim and not interpreted here).
 * Resume reads only train_state.safetensors (+ config.json for the shape), so a crash between
 * the two writes still leaves a consistent state to resume from. Every trainer_state field is
 * range-checked on load (version 2; step in [0, 2^30]; B, T, accum, n_params equal to this
 * trainer's; the data position consistent with the data order); errors name the file.
 * Weight decay: BitLinear matrices and an untied lm_head decay; norms and the embedding
 * (which is also the tied head) do not.
 * LoRA runs (m->lora set; the base frozen, bn_train_model_freeze): the optimizer, the gradient
 * norm, the dumped gradients and train_state ("param.<peft name>" ...) cover the adapters only,
 * n_params counts them, and the weights written are OUTDIR/adapter_model.safetensors +
 * adapter_config.json (lora.h) instead of config.json + model.safetensors; resume = a trainer on
 * the same base with the same adapter shape, then bn_trainer_load(OUTDIR).
 * Data parallel (t->dist set, dist.h): every step's loss is the mean over the ranks, the
 * gradients are averaged before the norm, clipping and AdamW, and a failure on any rank fails
 * the step on every rank; trainer_state stores the global batch (B * world) and the global data
 * position, so a checkpoint of W ranks x B resumes alone with batch W*B and vice versa.
 * Not: a CLI (tools/cmd_train.c prints progress); never prints. */
#ifndef BITNET_TRAIN_LOOP_H
#define BITNET_TRAIN_LOOP_H
#include "train/train.h"
#include "train/optim.h"
#include "train/data.h"
#include "train/dist.h"

typedef struct bn_trainer {
    bn_train_model *m;          /* not owned */
    bn_data *data;              /* not owned */
    bn_optim_cfg opt;
    int B, T, accum;
    int64_t step;               /* optimizer steps done */
    uint64_t rng;
    int32_t *in, *tg;           /* [B*T] */
    const char *dump_grads;     /* if set: write the first step's gradients here (before clipping) */
    const char *options;        /* if set: saved as "train_options" (not owned) */
    const char *base_name;      /* LoRA runs: base_model_name_or_path in adapter_config.json (not owned) */
    bn_dist *dist;              /* data parallel (not owned; NULL: alone). B is this rank's share of
                                 * the global batch B * dist->world, and data is its shard */
    int stop;                   /* in: this rank asks to stop after the step; out (data parallel):
                                 * some rank asked (every rank gets the same answer) */
} bn_trainer;

typedef struct bn_step_stats {
    float loss, lr, wd;
    double grad_norm;           /* before clipping */
    double seconds;
    int64_t tokens;
} bn_step_stats;

bitnet_status bn_trainer_init(bn_trainer *t, bn_train_model *m, bn_data *data, const bn_optim_cfg *opt, int B, int T, int accum);
void bn_trainer_free(bn_trainer *t);
/* One optimizer step over accum micro-batches. On a non-finite loss or gradient norm returns
 * BITNET_ERR_NUMERIC and leaves parameters and optimizer state untouched. */
bitnet_status bn_trainer_step(bn_trainer *t, bn_step_stats *st);
/* Mean loss over n batches of val read from its start (val's position is reset), over the
 * targets that count (a masked position is left out; 0 when none counts). */
bitnet_status bn_trainer_eval(bn_trainer *t, bn_data *val, int n, float *loss);
/* Write the checkpoint (see above) into dir (created if missing). */
bitnet_status bn_trainer_save(const bn_trainer *t, const char *dir);
/* Restore parameters, moments, step, data position and rng from dir/train_state.safetensors.
 * The model must have the checkpoint's shape (build it from dir/config.json). When t->data is
 * shuffled, it is re-seeded with the stored rng. */
bitnet_status bn_trainer_load(bn_trainer *t, const char *dir);
/* The largest step count a run may have (steps are 0 .. BN_TRAIN_MAX_STEPS). */
#define BN_TRAIN_MAX_STEPS (1 << 30)
/* *options = a malloc'd NUL-terminated copy of dir's stored "train_options" (NULL when the
 * checkpoint has none). BITNET_ERR_IO "no checkpoint in DIR" when dir/train_state.safetensors
 * does not exist. */
bitnet_status bn_trainer_read_options(const char *dir, char **options);
#endif
