/* bitnet_train.h — the public training API of bitnet.c: quantization-aware training (QAT) of
 * BitNet b1.58 models (absmean ternary weights and absmax int8 activations in the forward, the
 * straight-through estimator in the backward, float32 master weights, AdamW), full-precision
 * baselines, checkpoints that resume bit-exactly, export to the packed inference layout, and
 * byte-level BPE tokenizer training.
 *
 * What it is: opaque handles, params structs by value from *_default_params(), a status from
 * every call and the message in bitnet_last_error(), as in bitnet.h (which this includes). No
 * function prints, exits or installs a signal handler: bitnet_trainer_cancel() may be called
 * from another thread or a signal handler, and the caller's loop checks it between steps.
 * What it is not: an autograd engine or a graph framework; the model is the BitNet b1.58
 * architecture that bitnet.h runs.
 *
 * A run (what `bitnet train` does, tools/cmd_train.c):
 *     bitnet_train_params p = bitnet_train_default_params();  p.total_steps = 100;
 *     bitnet_trainer *t;  bitnet_trainer_new("config.json" or "master_dir", &p, &t);
 *     bitnet_trainer_set_data(t, "train.u32", "val.u32");
 *     while (bitnet_trainer_get_step(t) < p.total_steps) bitnet_trainer_step(t, &stats);
 *     bitnet_trainer_save(t, "out");  bitnet_export_packed("out", "out-packed");
 * Resume: bitnet_trainer_new("out", &p, &t); set_data; bitnet_trainer_load_state(t, "out"). */
#ifndef BITNET_TRAIN_API_H
#define BITNET_TRAIN_API_H
#include "bitnet.h"
#ifdef __cplusplus
extern "C" {
#endif
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

typedef enum bitnet_lr_schedule {
    BITNET_LR_CONSTANT = 0,   /* linear warmup, then lr */
    BITNET_LR_COSINE = 1,     /* warmup, then cosine to lr * min_lr_frac at total_steps */
    BITNET_LR_TWO_STAGE = 2,  /* BitNet b1.58 recipe: cosine to lr/2 at the midpoint, then
                               * lr * stage2_frac cosine-decaying by min_lr_frac; no weight
                               * decay in stage 2 */
} bitnet_lr_schedule;
/* "constant" / "cosine" / "two-stage"; NULL for an unknown value. */
const char *bitnet_lr_schedule_name(bitnet_lr_schedule s);
/* Parse a schedule name; 0 if unknown. */
int bitnet_lr_schedule_parse(const char *name, bitnet_lr_schedule *out);

/* AdamW with torch.optim.AdamW's arithmetic, global-norm clipping and the schedule. */
typedef struct bitnet_optim_params {
    float lr, beta1, beta2, eps, weight_decay;
    float clip;                  /* max gradient L2 norm; 0: no clipping */
    bitnet_lr_schedule schedule;
    int warmup;                  /* steps of linear warmup (0: none) */
    float min_lr_frac;           /* cosine floor as a fraction of the peak */
    float stage2_frac;           /* two-stage: stage-2 lr as a fraction of lr */
} bitnet_optim_params;

/* The longest run: steps are 0 .. BITNET_TRAIN_MAX_STEPS. */
#define BITNET_TRAIN_MAX_STEPS (1 << 30)

/* What a trainer trains. */
typedef enum bitnet_param_set {
    BITNET_TRAIN_ALL = 0,        /* every weight (float32 master weights, QAT) */
    BITNET_TRAIN_LORA = 1,       /* LoRA adapters on a frozen base: y = BitLinear(x) + (alpha/r) B A x,
                                  * A [r, in] (PEFT init: kaiming-uniform from seed), B [out, r] = 0,
                                  * both float32; the base's BitLinear weights are ternarized once
                                  * and get no gradients or AdamW moments. The low-rank term reads
                                  * the BitLinear's (int8-quantized) input. Saves write the adapter
                                  * in Hugging Face PEFT's format (adapter_model.safetensors +
                                  * adapter_config.json) instead of model weights; resume with a
                                  * trainer made from the same base and bitnet_trainer_load_state. */
} bitnet_param_set;

/* LoRA targets: bits of bitnet_train_params.lora_targets (0: all seven). */
#define BITNET_LORA_Q    (1u << 0)
#define BITNET_LORA_K    (1u << 1)
#define BITNET_LORA_V    (1u << 2)
#define BITNET_LORA_O    (1u << 3)
#define BITNET_LORA_GATE (1u << 4)
#define BITNET_LORA_UP   (1u << 5)
#define BITNET_LORA_DOWN (1u << 6)
/* Parse "q,k,v,o,gate,up,down" (or PEFT's q_proj, ..., or "all") into BITNET_LORA_* bits;
 * BITNET_ERR_ARG naming an unknown entry. */
bitnet_status bitnet_lora_parse_targets(const char *list, unsigned *mask);

/* How a device trainer rounds (bitnet_train_params.precision; the CPU ignores it). BitLinear
 * forward products are exact in every mode. */
typedef enum bitnet_train_precision {
    BITNET_TRAIN_PREC_DEFAULT = 0,  /* attention forward fp32 (it feeds the int8 quantizer), head and
                                     * attention backward TF32, BitLinear backward one bf16 term
                                     * (bf16 x bf16 products, fp32 sums) */
    BITNET_TRAIN_PREC_FAST = 1,     /* bf16 flash attention and a bf16 LM head (like autocast), BitLinear backward one bf16 term */
    BITNET_TRAIN_PREC_PARITY = 2,   /* head and attention fp32, BitLinear backward bf16 x 3 terms:
                                     * step-0 gradients within 1e-6 of the CPU's */
} bitnet_train_precision;

struct bitnet_train_progress;
typedef struct bitnet_train_params {
    const char *kernels;         /* CPU kernel set, as bitnet_model_params.kernels */
    int n_threads;               /* worker threads (0: this machine's physical cores) */
    int no_quant;                /* 1: full-precision baseline (no quantizers; the checkpoint is
                                  * labelled full_precision and bitnet_model_load refuses it) */
    int batch, seq, accum;       /* micro-batch of batch x seq tokens; accum micro-batches a step */
    int64_t total_steps;         /* the run's length (the schedule spans it) */
    uint64_t seed;               /* random init of a fresh model, and the order of data windows */
    float init_std;              /* fresh models: weights ~ N(0, init_std), norms 1 */
    bitnet_optim_params optim;
    bitnet_param_set param_set;  /* BITNET_TRAIN_ALL (default) or BITNET_TRAIN_LORA */
    int lora_rank;               /* r (default 8) */
    float lora_alpha;            /* alpha (default 16); the term is scaled by alpha / r */
    float lora_dropout;          /* p in [0, 1) (default 0): PEFT's lora_dropout, on the adapter branch's
                                  * input only, a fresh seeded mask per micro-batch, off in evaluation */
    unsigned lora_targets;       /* BITNET_LORA_* bits (default q and v, PEFT's llama default) */
    /* Called by bitnet_trainer_step after each successful step (NULL: none), on the caller's
     * thread, with progress_ud; it may call bitnet_trainer_cancel. */
    void (*progress)(void *ud, const struct bitnet_train_progress *p);
    void *progress_ud;
    const char *device;          /* NULL, "" or "cpu": the CPU; "cuda" or "cuda:N": CUDA device N
                                  * (`make CUDA=1` builds; param_set ALL): parameters, gradients,
                                  * AdamW moments and activations on the GPU, the same math and
                                  * checkpoints as the CPU trainer (within float rounding) */
    bitnet_train_precision precision; /* device trainers: BITNET_TRAIN_PREC_* (default 0) */
    int grad_checkpoint;         /* 1: gradient checkpointing (keep each layer's input, recompute the
                                  * layer in backward): less activation memory, ~1/3 more compute,
                                  * gradients bit-identical to 0 (default) */
    /* Data parallel over NCCL (`make CUDA=1` builds, device cuda): world_size processes, one per
     * GPU, train one model; 0 (default): alone, no NCCL; 1: NCCL with one rank (same results as
     * 0). batch is the global micro-batch: each rank takes batch / world_size of its sequences
     * (batch must be a multiple), from its shard of every batch, so the ranks together read
     * what one trainer with this batch reads; gradients are averaged before clipping and AdamW,
     * losses are the mean over the ranks, and checkpoints resume with any world_size (or alone).
     * Every rank makes its trainer with the same from, params (but rank) and data, and calls
     * step / eval / check_replicas at the same points; only one rank should save. */
    int world_size;
    int rank;                    /* this process's rank in [0, world_size) */
    const char *dist_id_path;    /* a file all ranks can reach: rank 0 writes NCCL's unique id
                                  * there, the others wait for it (up to 5 minutes); removed once
                                  * every rank joined. Use a fresh name per run. */
} bitnet_train_params;
/* What the progress callback gets after a step. */
typedef struct bitnet_train_progress {
    int64_t step, total_steps;   /* steps done (this one included), the run's length */
    float loss, lr;              /* this step's mean training loss and learning rate */
    double grad_norm;            /* before clipping */
    double seconds;              /* this step's wall time */
    double tokens_per_s;         /* this step's tokens / seconds */
    double avg_tokens_per_s;     /* over the steps this trainer ran */
    double eta_s;                /* (total_steps - step) at avg_tokens_per_s */
} bitnet_train_progress;
/* batch 4, seq 128, accum 1, 100 steps, seed 1337, init_std 0.02, lr 1e-3, betas 0.9/0.95,
 * eps 1e-8, weight decay 0.1, clip 1, constant schedule, min_lr_frac 0.1, stage2_frac 0.1,
 * param_set ALL (LoRA: r 8, alpha 16, dropout 0, targets q,v). */
bitnet_train_params bitnet_train_default_params(void);

typedef struct bitnet_trainer bitnet_trainer;

/* A trainer. from: a folder holding config.json and master weights (model.safetensors in
 * F32/BF16/F16, 2B-4T or 1bitLLM names; a checkpoint this API saved), or a config.json file
 * (a fresh model, random init from p->seed). p: NULL = defaults. */
bitnet_status bitnet_trainer_new(const char *from, const bitnet_train_params *p, bitnet_trainer **out);
void bitnet_trainer_free(bitnet_trainer *t);

/* Training data: files of uint32 little-endian token ids (bitnet tokenize-file writes them),
 * every id inside the model's vocabulary. Training reads random windows of seq+1 tokens in an
 * order fixed by the seed (a new permutation each epoch); validation reads from its start, in
 * order. val_path may be NULL. Needed before step/eval/load_state. */
bitnet_status bitnet_trainer_set_data(bitnet_trainer *t, const char *train_path, const char *val_path);
/* Training data in memory: ids[n] (each inside the vocabulary) and an optional loss mask[n]
 * (NULL: every token is a target; mask[i] = 0: token i is not a target, so the position that
 * predicts it adds no loss and no gradient; the loss is the mean over the targets that count).
 * Read like set_data's files (random windows for training, in order for validation); both are
 * copied. val_ids may be NULL (val_mask, n_val ignored then). */
bitnet_status bitnet_trainer_set_data_tokens(bitnet_trainer *t, const int32_t *ids, const uint8_t *mask, size_t n,
                                             const int32_t *val_ids, const uint8_t *val_mask, size_t n_val);
/* Chat supervised fine-tuning data: path is JSONL, one {"messages": [{"role": "system" |
 * "user" | "assistant" | ..., "content": "..."}, ...]} per non-blank line. Each conversation is
 * rendered with template tmpl (bitnet_chat_apply) and encoded with tok as `bitnet chat` encodes
 * turns (BOS first); only the assistant turns (their content and end of turn, not the
 * "Assistant: " prefix) get mask 1. Conversations are packed back to back with EOS between
 * them (unless one already ends in EOS; that EOS is trained after an assistant turn). *ids and
 * *mask are malloc'd [*n] (free them); *n_examples (may be NULL) counts the conversations.
 * Errors name the file and the line. */
bitnet_status bitnet_sft_load_jsonl(const char *path, const bitnet_tokenizer *tok, bitnet_chat_template tmpl,
                                    int32_t **ids, uint8_t **mask, size_t *n, int64_t *n_examples);
/* Re-seed the order of the remaining training windows (a resume with another seed). */
bitnet_status bitnet_trainer_reseed(bitnet_trainer *t, uint64_t seed);

typedef struct bitnet_train_stats {
    float loss;                  /* mean cross-entropy over the step's micro-batches */
    float lr, weight_decay;      /* as the schedule set them for this step */
    double grad_norm;            /* global L2 norm before clipping */
    double seconds;              /* wall time of the step */
    int64_t tokens;              /* tokens the step processed */
} bitnet_train_stats;

/* One optimizer step over accum micro-batches. BITNET_ERR_NUMERIC on a non-finite loss or
 * gradient norm, with parameters and optimizer state left as they were. */
bitnet_status bitnet_trainer_step(bitnet_trainer *t, bitnet_train_stats *st);
/* Mean validation loss over n_batches batches from the start of the validation data. */
bitnet_status bitnet_trainer_eval(bitnet_trainer *t, int n_batches, float *val_loss);
/* Write the checkpoint into dir (created if missing; every file through a temp file and a
 * rename): config.json + model.safetensors (float32 master weights, HF names) and
 * train_state.safetensors (what a bit-exact resume needs, and the options text). */
bitnet_status bitnet_trainer_save(const bitnet_trainer *t, const char *dir);
/* Restore parameters, AdamW moments, step and data order from dir's checkpoint (the trainer
 * must have been made from dir, and its data set). BITNET_ERR_IO "no checkpoint in DIR" when
 * there is none; every stored field is range-checked. */
bitnet_status bitnet_trainer_load_state(bitnet_trainer *t, const char *dir);
/* A caller's text (e.g. its options as JSON) stored verbatim in the next checkpoints; copied. */
bitnet_status bitnet_trainer_set_options_text(bitnet_trainer *t, const char *text);
/* *text = a malloc'd copy of the options text stored in dir's checkpoint (NULL if none). */
bitnet_status bitnet_trainer_read_options_text(const char *dir, char **text);
/* Data parallel: check that every rank holds the same parameters and AdamW moments (a 64-bit
 * hash of each rank's, gathered); BITNET_ERR_NUMERIC naming the first rank that differs from
 * rank 0. A collective: every rank calls it at the same point. Alone: BITNET_OK. */
bitnet_status bitnet_trainer_check_replicas(bitnet_trainer *t);
/* Write the gradients of the next step (before clipping) to path as float32 safetensors. */
bitnet_status bitnet_trainer_dump_next_grads(bitnet_trainer *t, const char *path);

/* Ask the caller's loop to stop: sets a flag that bitnet_trainer_cancelled() reports. Safe
 * from any thread and from a signal handler. */
void bitnet_trainer_cancel(bitnet_trainer *t);
int bitnet_trainer_cancelled(const bitnet_trainer *t);

typedef struct bitnet_trainer_info {
    int64_t step;                /* optimizer steps done */
    int64_t n_params;            /* trained parameters (the adapters' for a LoRA trainer) */
    int64_t n_base_params;       /* the model's parameters (frozen for a LoRA trainer) */
    double flops_per_token;      /* forward + backward model FLOPs per token ("6N"; LoRA: 4N of the
                                  * frozen base, no dW, + 6 x the adapters) */
    int vocab_size, hidden_size, n_layers;
    int full_precision;          /* the model was trained without quantizers */
    const char *gemm;            /* float GEMM kernels in use */
    int rank, world_size;        /* data parallel (bitnet_train_params); 0, 0 when alone */
} bitnet_trainer_info;
void bitnet_trainer_get_info(const bitnet_trainer *t, bitnet_trainer_info *info);
int64_t bitnet_trainer_get_step(const bitnet_trainer *t);

/* Bytes a trainer made from `from` with params p will hold (computed from the config; nothing is
 * loaded): weights (float32 master, + the dequantized ternary copy in QAT; the frozen base for
 * LoRA), grads, optimizer (AdamW m and v), adapters (LoRA: parameters, grads, m, v), activations
 * (kept for backward, per micro-batch, incl. the LoRA terms). Excludes the GEMM workspaces and
 * the data file. */
typedef struct bitnet_train_memory {
    int64_t weights, grads, optimizer, adapters, activations, total;
} bitnet_train_memory;
bitnet_status bitnet_train_plan(const char *from, const bitnet_train_params *p, bitnet_train_memory *out);

/* Write a 2B-4T packed inference checkpoint (what bitnet_model_load runs) from the master
 * weights in master_dir to out_dir (created if missing; tokenizer files copied along). A
 * full-precision (no_quant) checkpoint is refused (BITNET_ERR_ARG: packing ternarizes it, which
 * changes the model it learned) unless flags has BITNET_EXPORT_ALLOW_FULL_PRECISION. */
#define BITNET_EXPORT_ALLOW_FULL_PRECISION 1
bitnet_status bitnet_export_packed(const char *master_dir, const char *out_dir, int flags);
/* Merge a PEFT LoRA adapter (lora_dir: adapter_config.json + adapter_model.safetensors) into the
 * float master weights of master_dir: W += scale * (lora_alpha / r) * B A for every targeted
 * matrix; out_dir (created if missing) gets config.json + model.safetensors (float32 master)
 * and the tokenizer files. Running or packing the result ternarizes W again, which keeps only
 * the part of the adapter that survives the absmean rounding (no longer the exact LoRA model). */
bitnet_status bitnet_export_merge_lora(const char *master_dir, const char *lora_dir, float scale, const char *out_dir);
/* Copy the tokenizer files (tokenizer.json / tokenizer.model, tokenizer_config.json,
 * special_tokens_map.json, generation_config.json) found in src_dir into dst_dir, each
 * atomically; *n_copied (may be NULL) counts them. */
bitnet_status bitnet_copy_tokenizer_files(const char *src_dir, const char *dst_dir, int *n_copied);

/* ---- tokenizer training ---------------------------------------------------------------- */
typedef struct bitnet_bpe_params {
    int vocab_size;              /* total, incl. the 256 byte tokens and the specials */
    const char *const *specials; /* special tokens appended after the vocabulary */
    int n_specials;
    const char *bos;             /* special the post-processor adds at the start, or NULL */
    int min_frequency;           /* stop when the best pair occurs fewer times (2) */
    /* progress (may be NULL): phase 0 = counting words (bytes), 1 = merging (merges) */
    void (*progress)(void *ud, int phase, double done, double total);
    void *progress_ud;
} bitnet_bpe_params;
bitnet_bpe_params bitnet_bpe_default_params(void);
/* Train byte-level BPE (Llama 3 pre-tokenizer + ByteLevel) on texts[n] (lens[n] bytes each)
 * and write a Hugging Face tokenizer.json to out_path atomically. */
bitnet_status bitnet_bpe_train(const char *const *texts, const size_t *lens, int n,
                               const bitnet_bpe_params *p, const char *out_path, int *n_merges);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
#ifdef __cplusplus
}
#endif
#endif
