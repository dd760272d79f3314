/* bitnet.h — the one public header of bitnet.c, a C11 engine for BitNet b1.58 models.
 *
 * What it is: opaque handles for a loaded model, an inference context (KV cache + scratch),
 * a tokenizer and a sampler, all with the bitnet_ prefix. Constructors return a status and fill
 * an out-pointer; the caller frees what it gets with the matching _free. On any non-OK status
 * bitnet_last_error() (thread-local) holds a message naming the file/tensor and the problem.
 * No library function prints or exits.
 * What it is not: a graph framework, or a stable ABI across versions (yet). */
#ifndef BITNET_H
#define BITNET_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Everything declared here is exported from libbitnet.so; the library is built with
 * -fvisibility=hidden, so nothing else is. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define BITNET_VERSION "0.2.0"
/* The library's version string (BITNET_VERSION of the build). */
const char *bitnet_version(void);

typedef enum bitnet_status {
    BITNET_OK = 0,
    BITNET_ERR_IO = 1,          /* a file is missing or unreadable */
    BITNET_ERR_FORMAT = 2,      /* a file is malformed, truncated or inconsistent */
    BITNET_ERR_UNSUPPORTED = 3, /* well-formed but not something we run (model_type, dtype...) */
    BITNET_ERR_ARG = 4,         /* a bad argument (id out of vocab, context full, ...) */
    BITNET_ERR_NOMEM = 5,       /* allocation failed */
    BITNET_ERR_NUMERIC = 6,     /* NaN/inf where a finite number is needed */
} bitnet_status;

/* The message for the last non-OK status returned on this thread ("" if none). */
const char *bitnet_last_error(void);
/* Short name of a status code. */
const char *bitnet_status_str(bitnet_status s);
/* Write len bytes to path atomically: a temp file in the same folder, fsync, rename; path is
 * either the old file or the new one, never a mix. */
bitnet_status bitnet_write_file_atomic(const char *path, const void *data, size_t len);

/* ---- model ---------------------------------------------------------------------------- */
typedef struct bitnet_model bitnet_model;

typedef struct bitnet_model_info {
    char arch[32];          /* "bitnet" (2B-4T family) or "llama-bitnet" (1bitLLM family) */
    char weight_format[32]; /* "packed-u8", "master-f32", "master-bf16", "master-f16" */
    int vocab_size, hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, head_dim;
    int max_seq_len;
    float rope_theta, norm_eps;
    int act;                /* 0 = relu2, 1 = silu */
    int tied_embeddings;
    int bos_id, eos_id;     /* -1 if unknown */
    int64_t n_params;       /* parameters as in the checkpoint (ternary weights counted once) */
    int64_t n_ternary;      /* of which: ternary BitLinear weights */
    size_t weight_bytes;    /* bytes the weights occupy resident in memory */
    size_t ternary_bytes;   /* of which: packed ternary matrices */
    const char *isa;        /* kernel set in use */
    int head_type;          /* bitnet_head_type */
    size_t weight_bytes_per_token; /* weight bytes one decoded token reads: the packed ternary
                                    * matrices plus the LM head in its current representation */
} bitnet_model_info;

/* LM head precision. EXACT (default): the checkpoint's f32/f16/bf16 weights, f32 accumulation.
 * Q8: int8 weights with one scale per row. Q4: 4-bit weights with one scale per 32. Opt-in,
 * trading logit accuracy for bandwidth (see docs/PERFORMANCE.md for the measured error). */
typedef enum bitnet_head_type { BITNET_HEAD_EXACT = 0, BITNET_HEAD_Q8 = 1, BITNET_HEAD_Q4 = 2 } bitnet_head_type;

/* Called as layers are loaded: done of total. */
typedef void (*bitnet_progress_fn)(void *ud, int done, int total);

/* How to load a model. Take bitnet_model_default_params() and change fields. */
typedef struct bitnet_model_params {
    const char *kernels;          /* CPU kernel set: NULL or "" = the default (the best set this
                                   * CPU supports, or the one env BITNET_ISA names, read once);
                                   * else a name from bitnet_kernel_sets() — an unknown or
                                   * unsupported name is an error (BITNET_ERR_UNSUPPORTED) */
    bitnet_head_type head;        /* LM head representation (default EXACT) */
    const char *device;           /* where weights live and ops run: NULL, "" or "cpu" = the CPU;
                                   * "cuda" or "cuda:N" = GPU N (builds made with CUDA=1; else,
                                   * or with no driver/GPU, loading fails with a clear error) */
    bitnet_progress_fn progress;  /* NULL: none */
    void *progress_ud;
} bitnet_model_params;
bitnet_model_params bitnet_model_default_params(void);
/* Names of the kernel sets usable on this machine, best first, NULL-terminated (static). */
const char *const *bitnet_kernel_sets(void);

/* Load a Hugging Face model folder (config.json + model.safetensors or a sharded
 * model.safetensors.index.json). Layouts: 2B-4T packed, 2B-4T bf16/f32 master, 1bitLLM.
 * Same as bitnet_model_load_ex with the default params. */
bitnet_status bitnet_model_load(const char *path, bitnet_model **out);
/* Load with params (p NULL = defaults). path: a model folder as above, or one .safetensors
 * file with config.json in the same folder. */
bitnet_status bitnet_model_load_ex(const char *path, const bitnet_model_params *p, bitnet_model **out);

/* A file provider (whisper-style reader): how the loader gets a model's files without a
 * folder — from memory, an archive, an asset manager. The loader asks for files by plain name:
 * "config.json", then "model.safetensors" or, if that fails with BITNET_ERR_IO,
 * "model.safetensors.index.json" and the shards it names.
 * open: set *data / *size to the whole file and return BITNET_OK, or return BITNET_ERR_IO if
 *   there is no such file (another status for other failures). The bytes must stay valid and
 *   unchanged until close is called for them; they need no alignment.
 * close: NULL, or called once for every successful open (config.json and the index right after
 *   parsing; weight files at bitnet_model_free, since tensors may be used in place).
 * ud is passed to both; it and the functions must stay valid until bitnet_model_free. */
typedef struct bitnet_files {
    void *ud;
    bitnet_status (*open)(void *ud, const char *name, const void **data, size_t *size);
    void (*close)(void *ud, const void *data, size_t size);
} bitnet_files;
/* Load a model whose files f provides (same layouts and checks as a folder; messages name the
 * files by their plain names). p NULL = defaults. */
bitnet_status bitnet_model_load_files(const bitnet_files *f, const bitnet_model_params *p, bitnet_model **out);
/* One in-memory file for bitnet_files_from_memory. */
typedef struct bitnet_file_buf { const char *name; const void *data; size_t size; } bitnet_file_buf;
/* A provider over caller-owned buffers (not copied): bufs is an array ended by an entry whose
 * name is NULL; it and the buffers must outlive the model. */
bitnet_files bitnet_files_from_memory(const bitnet_file_buf *bufs);
/* Convert a model into a GGUF file: in is a model folder (2B-4T packed or master, 1bitLLM) or a
 * .gguf file; type "tq2_0", "tq1_0" (llama.cpp; d = 1 per block and the exact f32 scale in
 * "<name>.scale"; matrices whose rows are not a multiple of 256 as f16 {-1,0,1} + .scale) or
 * "i2_s" (bitnet.cpp, x86 layout). Ternary values and scales are kept exactly; norms f32,
 * embeddings/head in the source's float type. out is written through a temp file and a rename;
 * an existing out is BITNET_ERR_ARG unless flags has BITNET_CONVERT_FORCE. */
#define BITNET_CONVERT_FORCE 1
bitnet_status bitnet_convert_gguf(const char *in, const char *out, const char *type, int flags);
/* How to convert (bitnet_convert). Take bitnet_convert_default_params() and change fields. */
typedef struct bitnet_convert_params {
    const char *type;             /* GGUF output: ternary type "tq2_0", "tq1_0" or "i2_s" (default) */
    const char *head;             /* GGUF output: token_embd / output type: NULL or "" = the
                                   * source's float type (f32/f16/bf16; a quantized GGUF head as
                                   * f32); "f32", "f16", "bf16" (rounded to nearest even), or the
                                   * quantized "q8_0", "q6_k", "q4_0" (lossy: see docs/GGUF.md) */
    int flags;                    /* BITNET_CONVERT_FORCE: overwrite existing output files */
    bitnet_progress_fn progress;  /* NULL: none; else called after each tensor: done of total */
    void *progress_ud;
} bitnet_convert_params;
bitnet_convert_params bitnet_convert_default_params(void);
/* Convert in to out. out ending in ".gguf": as bitnet_convert_gguf with p's type and head.
 * Otherwise out is a folder (created if missing) and in must be a .gguf file: written in the
 * 2B-4T packed Hugging Face layout (config.json with quantization_config autobitlinear,
 * model.safetensors with the BitLinear weights as 2B-4T uint8 + "<name>_scale", floats as
 * bf16 where every value is exactly a bf16, else as the GGUF's f16 / f32), and the tokenizer
 * from tokenizer.ggml.*: gpt2 -> tokenizer.json (byte-level BPE), llama -> tokenizer.model
 * (SentencePiece), plus tokenizer_config.json (bos/eos tokens, chat_template). Every file goes
 * through a temp file and a rename, config.json last; a folder already holding one of those
 * files is BITNET_ERR_ARG unless p->flags has BITNET_CONVERT_FORCE. p NULL = defaults. */
bitnet_status bitnet_convert(const char *in, const char *out, const bitnet_convert_params *p);
void bitnet_model_free(bitnet_model *m);
void bitnet_model_get_info(const bitnet_model *m, bitnet_model_info *info);

/* One device this build can run models on (bitnet_devices). */
typedef struct bitnet_device_info {
    char name[16];    /* the bitnet_model_params.device value: "cpu", "cuda:0", ... */
    char desc[160];   /* e.g. "NVIDIA H200, 139.8 GiB, compute capability 9.0, 132 SMs" */
    int usable;       /* 0: listed only to say why it cannot be used here (desc) */
} bitnet_device_info;
/* The devices: "cpu" first, then each CUDA GPU ("cuda:N"); a CUDA build that finds no usable
 * GPU lists one "cuda" entry with usable 0 and the reason; a build without CUDA lists the CPU
 * alone. Writes up to max entries to out (out may be NULL) and returns how many there are. */
int bitnet_devices(bitnet_device_info *out, int max);
/* The memory copy rate of a GPU device ("cuda" or "cuda:N") in GB/s, bytes read plus written over
 * time (median of device-to-device copies of 1 GiB), for judging achieved bandwidth. The CPU and
 * builds without CUDA: BITNET_ERR_UNSUPPORTED. */
bitnet_status bitnet_device_bandwidth(const char *device, double *gbps);

/* A model with random weights (seeded, deterministic) in the shape of a known checkpoint, for
 * benchmarks: preset "2b-4t" (BitNet b1.58 2B-4T), "1bitllm-large" (bitnet_b1_58-large) or
 * "1bitllm-3b" (bitnet_b1_58-3B). p may be NULL (defaults); its kernels, head and device are
 * used. Its logits mean nothing. Errors: ARG (unknown preset), UNSUPPORTED (kernel set, device),
 * NOMEM. */
bitnet_status bitnet_model_synthetic(const char *preset, uint64_t seed, const bitnet_model_params *p,
                                     bitnet_model **out);

/* Switch the head representation (quantizing from the checkpoint's weights); not while a
 * context is evaluating. */
bitnet_status bitnet_model_set_head(bitnet_model *m, bitnet_head_type t);
/* Apply a LoRA adapter in Hugging Face PEFT's format (dir/adapter_config.json, peft_type LORA,
 * and dir/adapter_model.safetensors with lora_A/lora_B matrices named
 * base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight etc.): after each targeted
 * BitLinear the forward adds scale * (lora_alpha / r) * B A x, x the BitLinear's float input
 * (the norm output before its int8 activation quantizer, as PEFT and bitnet_train's
 * BITNET_TRAIN_LORA read it). Call again to stack
 * several adapters. All or nothing: on error the model is unchanged. Not while a context is
 * evaluating. */
bitnet_status bitnet_model_load_lora(bitnet_model *m, const char *dir, float scale);

/* ---- inference context ---------------------------------------------------------------- */
typedef struct bitnet_ctx bitnet_ctx;

/* A context holds n_seq_max independent sequences (ids 0..n_seq_max-1), each with its own KV
 * cache of n_ctx positions; one bitnet_ctx_decode call runs tokens of several sequences through
 * each weight matrix together (decoding k sequences costs about one weight pass, not k).
 * bitnet_ctx_eval/reset/pos/truncate are the single-sequence API: they act on sequence 0. */
/* How the KV cache stores keys and values (arithmetic is float either way). f16: half the
 * memory, values rounded to nearest even (relative error <= 2^-11); f32: exact. The CUDA
 * backend stores f32 whatever is asked. */
typedef enum { BITNET_KV_F16 = 0, BITNET_KV_F32 = 1 } bitnet_kv_type;
typedef struct bitnet_ctx_params {
    int n_ctx;      /* KV cache length per sequence, in tokens (0: min(model max, 4096)) */
    int n_threads;  /* worker threads (0: bitnet_physical_cores()) */
    int n_seq_max;  /* sequences (0: 1) */
    int kv_type;    /* bitnet_kv_type (0: BITNET_KV_F16) */
} bitnet_ctx_params;
bitnet_ctx_params bitnet_ctx_default_params(void); /* all fields 0: the defaults above */
/* Physical cores this process may run on (CPUs of its affinity mask, hyperthread siblings
 * counted once, from /sys/devices/system/cpu topology; else the online CPU count); >= 1. */
int bitnet_physical_cores(void);

bitnet_status bitnet_ctx_new(const bitnet_model *m, const bitnet_ctx_params *p, bitnet_ctx **out);
void bitnet_ctx_free(bitnet_ctx *c);
/* Forget every sequence's KV cache (all positions back to 0). */
void bitnet_ctx_reset(bitnet_ctx *c);
/* Tokens already in sequence 0's KV cache. */
int bitnet_ctx_pos(const bitnet_ctx *c);
/* Drop sequence 0's cache entries at and after pos (0 <= pos <= current position). */
bitnet_status bitnet_ctx_truncate(bitnet_ctx *c, int pos);
/* Run n tokens (ids[n]) of sequence 0 through the model at its current position, appending them
 * to its KV cache. logits: NULL, or float[n][vocab] when all_logits, or float[vocab] (last row).
 * Fails with BITNET_ERR_ARG (cache unchanged) if an id is out of vocab or the cache would
 * overflow, with BITNET_ERR_NUMERIC (cache unchanged) if the hidden state or logits are not finite. */
bitnet_status bitnet_ctx_eval(bitnet_ctx *c, const int32_t *ids, int n, float *logits, int all_logits);

/* A batch of n entries for bitnet_ctx_decode, like llama_batch. Entry i is token[i] of sequence
 * seq_id[i] (seq_id NULL: all 0) at position pos[i]. Each sequence's entries, in batch order,
 * must continue it without gaps: its first entry at bitnet_ctx_seq_pos(c, seq), the next at +1...
 * (pos NULL: exactly those positions; pos only restates them, as a check). logits[i] != 0 asks
 * for entry i's logits (logits NULL: the last entry of each sequence in the batch). */
typedef struct bitnet_batch {
    int n;
    const int32_t *token;   /* [n] */
    const int32_t *pos;     /* [n] or NULL */
    const int32_t *seq_id;  /* [n] or NULL */
    const int8_t *logits;   /* [n] or NULL */
} bitnet_batch;
/* Run a batch, appending every entry to its sequence's KV cache. logits: NULL (nothing is
 * computed for the head), or float[number of entries asking for logits][vocab], rows in batch
 * order. Every id, sequence id, position and capacity is checked before anything runs:
 * BITNET_ERR_ARG leaves every cache unchanged; so does BITNET_ERR_NUMERIC (non-finite hidden
 * state or logits; the logits written are then meaningless). */
bitnet_status bitnet_ctx_decode(bitnet_ctx *c, const bitnet_batch *b, float *logits);
/* Greedy decoding without the logits leaving the device: as bitnet_ctx_decode, but for each
 * entry that would get a logits row, next[row] (rows in batch order) = the id of its largest
 * logit, the lowest id on ties (the sampler's temperature-0 choice without bias or penalties).
 * On a GPU only the ids are copied back. Errors as bitnet_ctx_decode. */
bitnet_status bitnet_ctx_decode_greedy(bitnet_ctx *c, const bitnet_batch *b, int32_t *next);
/* bitnet_ctx_eval of sequence 0 with the greedy choice for the last token in *next. */
bitnet_status bitnet_ctx_eval_greedy(bitnet_ctx *c, const int32_t *ids, int n, int32_t *next);
/* Tokens in sequence seq's cache (its next position); -1 if seq is out of range. */
int bitnet_ctx_seq_pos(const bitnet_ctx *c, int seq);
/* Drop sequence seq's entries at and after pos (0 <= pos <= its position; 0 clears it). */
bitnet_status bitnet_ctx_seq_truncate(bitnet_ctx *c, int seq, int pos);
/* Make sequence dst a copy of sequence src (its cache entries and position; dst's own entries
 * are dropped), like llama.cpp's seq_cp: a shared prompt is decoded once, then continued in
 * several sequences. src == dst: nothing. BITNET_ERR_ARG for a sequence out of range. */
bitnet_status bitnet_ctx_seq_copy(bitnet_ctx *c, int src, int dst);

/* ---- tokenizer ------------------------------------------------------------------------ */
typedef struct bitnet_tokenizer bitnet_tokenizer;

/* path: a model folder (tokenizer.json preferred, else tokenizer.model), a tokenizer.json or a
 * tokenizer.model, or a .gguf file (its tokenizer.ggml.* metadata: gpt2 byte-level BPE or llama
 * SentencePiece). Special
 * ids are read from the folder's config files when present (a GGUF file carries its own). */
bitnet_status bitnet_tokenizer_load(const char *path, bitnet_tokenizer **out);
/* A note about how t was read that a user should see once (a fallback the loader took: a GGUF
 * file without tokenizer.ggml.pre, as old bitnet.cpp files, gets the Llama-3 pre-tokenizer
 * regex), or NULL. Static text owned by t. */
const char *bitnet_tokenizer_notice(const bitnet_tokenizer *t);
void bitnet_tokenizer_free(bitnet_tokenizer *t);
int bitnet_tokenizer_vocab_size(const bitnet_tokenizer *t);
int bitnet_tokenizer_bos(const bitnet_tokenizer *t);  /* -1 if none */
int bitnet_tokenizer_eos(const bitnet_tokenizer *t);  /* -1 if none */
int bitnet_tokenizer_eot(const bitnet_tokenizer *t);  /* end-of-turn (<|eot_id|>), -1 if none */
int bitnet_tokenizer_is_eog(const bitnet_tokenizer *t, int id); /* EOS, EOT or other end-of-generation */
/* Look up one token's id by its exact text (e.g. "<|eot_id|>"); -1 if absent. */
int bitnet_tokenizer_token_id(const bitnet_tokenizer *t, const char *piece);
/* Encode len bytes of text (any bytes; invalid UTF-8 goes through the byte path). Special-token
 * text inside the input is recognised as HF does. add_bos: prepend BOS. *ids is malloc'd. */
bitnet_status bitnet_tokenizer_encode(const bitnet_tokenizer *t, const char *text, size_t len,
                                      int add_bos, int32_t **ids, int *n_ids);
/* Flags for bitnet_tokenizer_encode_ex. BITNET_TOK_BOS: prepend BOS. BITNET_TOK_CONTINUE: the
 * text continues earlier text (a later chunk of a file), so start-of-text rules do not apply:
 * no Metaspace prepend_scheme "first" prefix, no SentencePiece dummy prefix. */
#define BITNET_TOK_BOS 1
#define BITNET_TOK_CONTINUE 2
bitnet_status bitnet_tokenizer_encode_ex(const bitnet_tokenizer *t, const char *text, size_t len, int flags,
                                         int32_t **ids, int *n_ids);
/* Decode ids to a malloc'd NUL-terminated UTF-8 string (as HF decode, skip_special_tokens=false). */
bitnet_status bitnet_tokenizer_decode(const bitnet_tokenizer *t, const int32_t *ids, int n, char **text);
/* As bitnet_tokenizer_decode, also giving the length in bytes: the text may hold NUL bytes. */
bitnet_status bitnet_tokenizer_decode_len(const bitnet_tokenizer *t, const int32_t *ids, int n, char **text, size_t *len);

/* Streaming decoder: feed ids one at a time; returns only complete UTF-8 text. */
typedef struct bitnet_detok bitnet_detok;
bitnet_status bitnet_detok_new(const bitnet_tokenizer *t, bitnet_detok **out);
void bitnet_detok_free(bitnet_detok *d);
/* Append the text of id; *piece points to NUL-terminated text valid until the next call. */
bitnet_status bitnet_detok_push(bitnet_detok *d, int32_t id, const char **piece);
/* Flush held-back bytes (as U+FFFD where incomplete). */
const char *bitnet_detok_flush(bitnet_detok *d);

/* ---- sampler ----------------------------------------------------------------------------
 * The sampler chain, one call (bitnet_sampler_sample), always in this order:
 *   logit bias -> penalties (repeat, frequency, presence over the penalty window)
 *   -> temperature 0: argmax, done
 *   -> top-k -> top-p -> min-p (top-p/min-p on the temperature-1 softmax, as llama.cpp)
 *   -> temperature -> softmax -> draw with the seeded RNG.
 * The same seed and settings give the same tokens. Not: grammars, beam search, mirostat. */
typedef struct bitnet_sampler bitnet_sampler;
/* Add bias to token's logit before anything else (-INFINITY bans the token). */
typedef struct bitnet_logit_bias { int32_t token; float bias; } bitnet_logit_bias;
/* seed value meaning "pick a random seed from the OS" (bitnet_sampler_seed tells which). */
#define BITNET_SEED_RANDOM UINT64_MAX
typedef struct bitnet_sampler_params {
    float temperature;     /* 0: greedy */
    int top_k;             /* 0: off */
    float top_p;           /* 1: off */
    float min_p;           /* 0: off */
    float repeat_penalty;  /* 1: off (llama.cpp semantics: positive logits / r, negative * r) */
    float frequency_penalty, presence_penalty; /* 0: off (OpenAI semantics) */
    int penalty_last_n;    /* penalty window, as llama.cpp: N = the last N accepted ids (default 64),
                            * 0 = no window (penalties off), -1 = every id accepted since the
                            * sampler was made or reset (the whole context) */
    uint64_t seed;         /* RNG seed; BITNET_SEED_RANDOM: one from the OS */
    const bitnet_logit_bias *logit_bias; /* n_logit_bias entries, copied by bitnet_sampler_new;
                            * tokens must be in the vocabulary; the same token twice adds up */
    int n_logit_bias;
} bitnet_sampler_params;
/* Defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties (window 64),
 * seed BITNET_SEED_RANDOM, no logit bias. */
bitnet_sampler_params bitnet_sampler_default_params(void);
/* Same as *p = bitnet_sampler_default_params() (kept for older callers). */
void bitnet_sampler_params_default(bitnet_sampler_params *p);
/* p NULL = defaults. BITNET_ERR_ARG for a parameter out of range (temperature < 0, top_k < 0,
 * top_p not in (0,1], min_p not in [0,1], repeat_penalty <= 0, non-finite penalties,
 * penalty_last_n < -1, a bias token outside [0, vocab_size), a NaN or +inf bias). */
bitnet_status bitnet_sampler_new(const bitnet_sampler_params *p, int vocab_size, bitnet_sampler **out);
void bitnet_sampler_free(bitnet_sampler *s);
/* Run the chain on logits[vocab] (modified in place: bias and penalties are applied to it) and
 * return the picked id; -1 if no token can be picked (every logit NaN or -inf). */
int bitnet_sampler_sample(bitnet_sampler *s, float *logits);
/* Tell the sampler an id was emitted or fed (for penalties). Ids outside the vocab are ignored. */
void bitnet_sampler_accept(bitnet_sampler *s, int id);
/* Start a new sequence: forget the accepted ids and restart the RNG from the seed, so the
 * sampler behaves exactly as a new one with the same params. */
void bitnet_sampler_reset(bitnet_sampler *s);
/* The seed in use (the one drawn from the OS when the params said BITNET_SEED_RANDOM). */
uint64_t bitnet_sampler_seed(const bitnet_sampler *s);

/* ---- chat templates -----------------------------------------------------------------------
 * The chat formats bitnet.c knows, rendered exactly as the Jinja chat_template of
 * tokenizer_config.json renders them (without the BOS text: encode the result with
 * BITNET_TOK_BOS at the start of a conversation):
 *   BITNET (2B-4T): "System: S<|eot_id|>User: U<|eot_id|>Assistant: A<|eot_id|>" and, with
 *     add_assistant, a final "Assistant: " (the role capitalized as Jinja's capitalize does);
 *   LLAMA3: "<|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>" per message (content
 *     trimmed of leading/trailing whitespace, as the Llama 3 template does), and with
 *     add_assistant "<|start_header_id|>assistant<|end_header_id|>\n\n";
 *   PLAIN: "Role: CONTENT\n" per message, and with add_assistant "Assistant:".
 * Each message renders on its own, so a conversation can be rendered one turn at a time.
 * Not: a Jinja interpreter; other templates are detected as PLAIN. */
typedef enum bitnet_chat_template {
    BITNET_CHAT_PLAIN = 0,
    BITNET_CHAT_BITNET = 1,
    BITNET_CHAT_LLAMA3 = 2,
} bitnet_chat_template;
/* One OpenAI-style message: role "system", "user", "assistant" (or another name), content text. */
typedef struct bitnet_chat_message { const char *role; const char *content; } bitnet_chat_message;
/* Classify a Jinja chat_template string (NULL or unknown: PLAIN). */
bitnet_chat_template bitnet_chat_template_from_jinja(const char *jinja);
/* Detect the template of a model: path is a folder (its tokenizer_config.json is read) or a
 * tokenizer_config.json file. No file or no chat_template key: PLAIN and BITNET_OK. A file that
 * is not a JSON object: BITNET_ERR_FORMAT naming it. */
bitnet_status bitnet_chat_template_detect(const char *path, bitnet_chat_template *out);
/* "plain", "bitnet", "llama3". */
const char *bitnet_chat_template_name(bitnet_chat_template t);
/* Parse one of those names; BITNET_ERR_ARG for another. */
bitnet_status bitnet_chat_template_from_name(const char *name, bitnet_chat_template *out);
/* Render msgs[n] (n >= 0) in template t, then the assistant prefix if add_assistant, into a
 * malloc'd NUL-terminated string *out (caller frees). BITNET_ERR_ARG for a NULL or empty role,
 * NULL content, or an unknown template. */
bitnet_status bitnet_chat_apply(bitnet_chat_template t, const bitnet_chat_message *msgs, int n, int add_assistant,
                                char **out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
#ifdef __cplusplus
}
#endif
#endif
