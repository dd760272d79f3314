/* train_export.h — write a 2B-4T packed inference checkpoint from master weights.
 * Each BitLinear W[out, in] is ternarized per tensor and packed with the codec of ternary.h
 * (absmean, as training's forward does; 2B-4T uint8[out/4, in]); "<name>_scale"
 * ("...weight_scale") is bf16 [1] = mean|W| (autobitlinear: multiplied). Norms, embeddings and
 * an untied lm_head are bf16. Tensors are named by the arch table's 2B-4T scheme (arch.h), so
 * 1bitLLM-family sub-norms become attn_sub_norm / ffn_sub_norm. config.json gets
 * quantization_config {bitnet, autobitlinear, offline}; tokenizer files are copied if present.
 * Not: a general converter (no sharding, no other quantizations). */
#ifndef BITNET_TRAIN_EXPORT_H
#define BITNET_TRAIN_EXPORT_H
#include "core/util.h"
#include <stdint.h>
/* in_dir: an HF master checkpoint folder; out_dir: created if missing. Errors: out % 4 != 0
 * (names the tensor), unreadable input, write failures. */
bitnet_status bn_export_packed(const char *in_dir, const char *out_dir);
/* Copy the tokenizer files present in src_dir (tokenizer.json, tokenizer_config.json,
 * tokenizer.model, generation_config.json, special_tokens_map.json) into dst_dir, each
 * atomically; *n_copied (may be NULL) = how many there were. */
bitnet_status bn_copy_tokenizer_files(const char *src_dir, const char *dst_dir, int *n_copied);
#endif
