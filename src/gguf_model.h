/* gguf_model.h — loading a bitnet_model from one GGUF file (gguf_model.c). Not public: the API
 * is bitnet_model_load_ex("x.gguf", ...). */
#ifndef BITNET_GGUF_MODEL_H
#define BITNET_GGUF_MODEL_H
#include "model.h"
#include "files.h"

/* Load the GGUF file `name` from src (opened, parsed, decoded, packed and closed again before
 * returning; the model keeps no pointer into it). p NULL = defaults. Errors name the file and
 * the problem (gguf.h for the format; metadata keys and tensors for the model). */
bitnet_status bn_gguf_model_load(const bn_src *src, const char *name, const bitnet_model_params *p, bitnet_model **out);
#endif
