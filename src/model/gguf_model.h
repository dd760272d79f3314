/* gguf_model.h — loading a bitnet_model from one GGUF file (gguf_model.c). Not public: the API
 * is bitnet_model_load_ex("x.gguf", ...). */
#ifndef BITNET_GGUF_MODEL_H
#define BITNET_GGUF_MODEL_H
#include "model/model.h"
#include "io/files.h"
#include "io/gguf.h"

/* The model config from a GGUF file's metadata: general.architecture bitnet (silu) or
 * bitnet-b1.58 / bitnet-25 (relu2); the "<arch>.*" hyper-parameters range-checked (vocab_size
 * defaults to the token count, head_count_kv to head_count, rope.freq_base to 10000);
 * tied when there is no output.weight; bos/eos/eot ids from tokenizer.ggml.*. */
bitnet_status bn_gguf_config(const bn_gguf *g, bn_config *c);

/* Load the GGUF file `name` from src (opened, parsed, decoded, packed and closed again before
 * returning; the model keeps no pointer into it). p NULL = defaults. Errors name the file and
 * the problem (gguf.h for the format; metadata keys and tensors for the model). */
bitnet_status bn_gguf_model_load(const bn_src *src, const char *name, const bitnet_model_params *p, bitnet_model **out);
#endif
