/* config.c — HF config.json parsing with every field range-checked (see config.h). */
#include "io/config.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <math.h>

static bitnet_status get_int(cJSON *root, const char *path, const char *key, int lo, int hi, int def, int *out) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (def == INT32_MIN) return bn_err(BITNET_ERR_FORMAT, "%s: missing field '%s'", path, key);
        *out = def; return BITNET_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return bn_err(BITNET_ERR_FORMAT, "%s: field '%s' must be an integer in [%d, %d]", path, key, lo, hi);
    *out = (int)v->valuedouble; return BITNET_OK;
}

static bitnet_status get_float(cJSON *root, const char *path, const char *key, double lo, double hi, double def, float *out) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) { *out = (float)def; return BITNET_OK; }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return bn_err(BITNET_ERR_FORMAT, "%s: field '%s' must be a number in [%g, %g]", path, key, lo, hi);
    *out = (float)v->valuedouble; return BITNET_OK;
}

bitnet_status bn_config_parse(const char *json, const char *path, bn_config *c) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_Parse(json);
    if (!root) { const char *e = cJSON_GetErrorPtr(); return bn_err(BITNET_ERR_FORMAT, "%s: invalid JSON at byte %td", path, e && e >= json ? e - json : (ptrdiff_t)0); }
    if (!cJSON_IsObject(root)) { cJSON_Delete(root); return bn_err(BITNET_ERR_FORMAT, "%s: not a JSON object", path); }
    bitnet_status s = BITNET_OK;
    cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *mts = cJSON_IsString(mt) ? mt->valuestring : NULL;
    if (!mts) { s = bn_err(BITNET_ERR_FORMAT, "%s: missing field 'model_type'", path); goto done; }
    if (!strcmp(mts, "bitnet")) c->family = BN_FAM_BITNET;
    else if (!strcmp(mts, "llama")) {
        /* 1bitLLM checkpoints are llama-typed with BitnetForCausalLM (or weight_bits set) */
        cJSON *ar = cJSON_GetObjectItemCaseSensitive(root, "architectures");
        int ok = cJSON_GetObjectItemCaseSensitive(root, "weight_bits") != NULL;
        cJSON *a;
        cJSON_ArrayForEach(a, ar) if (cJSON_IsString(a) && strstr(a->valuestring, "Bitnet")) ok = 1;
        if (!ok) { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: model_type 'llama' without BitnetForCausalLM is a float LLaMA, not a BitNet b1.58 model", path); goto done; }
        c->family = BN_FAM_1BITLLM;
    } else { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: unknown model_type '%s' (expected 'bitnet' or 1bitLLM 'llama')", path, mts); goto done; }

    if ((s = get_int(root, path, "vocab_size", 1, 1 << 24, INT32_MIN, &c->vocab_size))) goto done;
    if ((s = get_int(root, path, "hidden_size", 1, 1 << 16, INT32_MIN, &c->hidden_size))) goto done;
    if ((s = get_int(root, path, "intermediate_size", 1, 1 << 18, INT32_MIN, &c->intermediate_size))) goto done;
    if ((s = get_int(root, path, "num_hidden_layers", 1, 1024, INT32_MIN, &c->n_layers))) goto done;
    if ((s = get_int(root, path, "num_attention_heads", 1, 1024, INT32_MIN, &c->n_heads))) goto done;
    if ((s = get_int(root, path, "num_key_value_heads", 1, 1024, c->n_heads, &c->n_kv_heads))) goto done;
    if ((s = get_int(root, path, "max_position_embeddings", 1, 1 << 24, 2048, &c->max_pos))) goto done;
    if (c->hidden_size % c->n_heads) { s = bn_err(BITNET_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->hidden_size, c->n_heads); goto done; }
    if ((s = get_int(root, path, "head_dim", 2, 1 << 12, c->hidden_size / c->n_heads, &c->head_dim))) goto done;
    if (c->head_dim % 2) { s = bn_err(BITNET_ERR_FORMAT, "%s: head_dim %d must be even for RoPE", path, c->head_dim); goto done; }
    if (c->n_heads % c->n_kv_heads) { s = bn_err(BITNET_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, c->n_heads, c->n_kv_heads); goto done; }
    if ((s = get_float(root, path, "rope_theta", 1.0, 1e9, 10000.0, &c->rope_theta))) goto done;
    if ((s = get_float(root, path, "rms_norm_eps", 0.0, 1.0, 1e-6, &c->norm_eps))) goto done;
    cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: rope_scaling is not supported", path); goto done; }
    cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    const char *acts = cJSON_IsString(act) ? act->valuestring : (c->family == BN_FAM_BITNET ? "relu2" : "silu");
    if (!strcmp(acts, "relu2")) c->act = BN_ACT_RELU2;
    else if (!strcmp(acts, "silu") || !strcmp(acts, "swish")) c->act = BN_ACT_SILU;
    else { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported (relu2, silu)", path, acts); goto done; }
    cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    c->tied = tie ? cJSON_IsTrue(tie) : (c->family == BN_FAM_BITNET);
    if ((s = get_int(root, path, "bos_token_id", -1, c->vocab_size - 1, -1, &c->bos_id))) goto done;
    cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    c->eos_id = -1;
    if (cJSON_IsArray(eos)) {
        cJSON *e;
        cJSON_ArrayForEach(e, eos) if (cJSON_IsNumber(e) && c->n_eos < 8 && e->valueint >= 0 && e->valueint < c->vocab_size) c->eos_ids[c->n_eos++] = e->valueint;
        if (c->n_eos) c->eos_id = c->eos_ids[0];
    } else if ((s = get_int(root, path, "eos_token_id", -1, c->vocab_size - 1, -1, &c->eos_id))) goto done;
    else if (c->eos_id >= 0) c->eos_ids[c->n_eos++] = c->eos_id;
    c->linear_class = BN_LC_AUTOBITLINEAR;
    cJSON *qc = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (cJSON_IsObject(qc)) {
        cJSON *lc = cJSON_GetObjectItemCaseSensitive(qc, "linear_class");
        if (cJSON_IsString(lc)) {
            if (!strcmp(lc->valuestring, "autobitlinear")) c->linear_class = BN_LC_AUTOBITLINEAR;
            else if (!strcmp(lc->valuestring, "bitlinear")) c->linear_class = BN_LC_BITLINEAR;
            else { s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: quantization_config.linear_class '%s' is not supported", path, lc->valuestring); goto done; }
        }
    }
    c->full_precision = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "full_precision"));
done:
    cJSON_Delete(root);
    return s;
}

bitnet_status bn_config_load(const char *dir, bn_config *c) {
    bn_src src = bn_src_dir(dir);
    return bn_config_load_src(&src, c);
}

bitnet_status bn_config_load_src(const bn_src *src, bn_config *c) {
    const void *data; size_t n;
    bitnet_status s = bn_src_open_small(src, "config.json", &data, &n);
    if (s) return s;
    char *path = bn_src_path(src, "config.json"), *txt = malloc(n + 1);   /* cJSON wants a NUL */
    if (!path || !txt) s = bn_err(BITNET_ERR_NOMEM, "out of memory reading config.json");
    else { memcpy(txt, data, n); txt[n] = 0; s = bn_config_parse(txt, path, c); }
    bn_files_close(&src->f, data, n);
    free(txt); free(path);
    return s;
}

/* A float as the shortest decimal that reads back to it (1e-05, not 9.99999974737875e-06). */
static double clean(float f) { char b[32]; snprintf(b, sizeof b, "%.7g", (double)f); return strtod(b, NULL); }

bitnet_status bn_config_save(const bn_config *c, const char *path, int packed) {
    cJSON *r = cJSON_CreateObject();
    cJSON *ar = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(ar, cJSON_CreateString(c->family == BN_FAM_BITNET ? "BitNetForCausalLM" : "BitnetForCausalLM"));
    cJSON_AddStringToObject(r, "model_type", c->family == BN_FAM_BITNET ? "bitnet" : "llama");
    cJSON_AddNumberToObject(r, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(r, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(r, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(r, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(r, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(r, "num_key_value_heads", c->n_kv_heads);
    if (c->head_dim != c->hidden_size / c->n_heads) cJSON_AddNumberToObject(r, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->max_pos);
    cJSON_AddNumberToObject(r, "rope_theta", clean(c->rope_theta));
    cJSON_AddNumberToObject(r, "rms_norm_eps", clean(c->norm_eps));
    cJSON_AddStringToObject(r, "hidden_act", c->act == BN_ACT_RELU2 ? "relu2" : "silu");
    cJSON_AddBoolToObject(r, "tie_word_embeddings", c->tied);
    if (c->bos_id >= 0) cJSON_AddNumberToObject(r, "bos_token_id", c->bos_id);
    if (c->eos_id >= 0) cJSON_AddNumberToObject(r, "eos_token_id", c->eos_id);
    cJSON_AddBoolToObject(r, "attention_bias", 0);
    cJSON_AddStringToObject(r, "torch_dtype", packed ? "bfloat16" : "float32");
    if (c->full_precision && !packed) cJSON_AddBoolToObject(r, "full_precision", 1);
    else if (c->family == BN_FAM_BITNET) {
        cJSON *q = cJSON_AddObjectToObject(r, "quantization_config");
        cJSON_AddStringToObject(q, "quant_method", "bitnet");
        cJSON_AddStringToObject(q, "linear_class", c->linear_class == BN_LC_BITLINEAR ? "bitlinear" : "autobitlinear");
        cJSON_AddStringToObject(q, "quantization_mode", packed ? "offline" : "online");
    }
    char *js = cJSON_Print(r);
    cJSON_Delete(r);
    if (!js) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    bitnet_status s = bn_write_file_atomic(path, js, strlen(js));
    free(js);
    return s;
}
