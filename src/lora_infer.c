/* lora_infer.c — LoRA adapters at inference (bitnet_model_load_lora, include/bitnet.h): the
 * adapter matrices of a PEFT folder attached to the model's BitLinear matrices (bn_tmat.lora, a
 * chain, so several adapters stack), and the low-rank term model.c adds after each targeted
 * BitLinear: y += scale * (alpha/r) * B (A x_deq), where x_deq = xq / xs is the BitLinear's int8
 * activation dequantized — the same input the trainer's adapters see (lora.h).
 * Not: a merger (adapters stay separate float matrices), or a trainer. */
#include "model.h"
#include "lora.h"
#include "arch.h"
#include "safetensors.h"
#include <math.h>

typedef struct bn_lora_ad bn_lora_ad;
struct bn_lora_ad {
    int r, rows, cols;
    float scale;           /* user scale * alpha / r */
    float *A, *B;          /* [r][cols], [rows][r] */
    struct bn_lora_ad *next;
};

#define BN_LORA_MAX_INFER_RANK 1024

static bn_tmat *slot_mat(bn_layer *L, int slot) {
    switch (slot) {
    case BN_S_Q: return &L->wq; case BN_S_K: return &L->wk; case BN_S_V: return &L->wv; case BN_S_O: return &L->wo;
    case BN_S_GATE: return &L->wgate; case BN_S_UP: return &L->wup; case BN_S_DOWN: return &L->wdown;
    default: return NULL;
    }
}

bitnet_status bitnet_model_load_lora(bitnet_model *m, const char *dir, float scale) {
    if (!m || !dir) return bn_err(BITNET_ERR_ARG, "lora: no model or adapter folder given");
    if (!isfinite(scale)) return bn_err(BITNET_ERR_ARG, "lora: scale %g is not finite", scale);
    int rank; float alpha; unsigned mask;
    bitnet_status s = bn_lora_read_config(dir, &rank, &alpha, &mask);
    if (s) return s;
    if (rank > BN_LORA_MAX_INFER_RANK) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: rank %d is above the %d inference supports", dir, rank, BN_LORA_MAX_INFER_RANK);
    char *mp = bn_path_join(dir, "adapter_model.safetensors");
    bn_st *st = NULL;
    s = mp ? bn_st_open(mp, &st) : bn_err(BITNET_ERR_NOMEM, "out of memory");
    int nl = m->cfg.n_layers, n = 0;
    bn_lora_ad **made = s ? NULL : calloc((size_t)nl * 7, sizeof *made);
    if (!s && !made) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    bn_naming nm = bn_arch_naming(&m->cfg);
    for (int l = 0; l < nl && !s; l++)
        for (int sl = 0; sl < BN_LAYER_SLOTS && !s; sl++) {
            if (!(mask & (1u << sl))) continue;
            bn_tmat *w = slot_mat(&m->layers[l], sl);
            if (!w) continue;
            char base[96], na[160], nb[160];
            bn_arch_tensor_name(nm, (bn_slot)sl, l, base, sizeof base);
            bn_lora_peft_name(base, "lora_A", na, sizeof na);
            bn_lora_peft_name(base, "lora_B", nb, sizeof nb);
            bn_lora_ad *a = calloc(1, sizeof *a);
            if (!a) { s = bn_err(BITNET_ERR_NOMEM, "out of memory"); break; }
            made[n++] = a;
            a->r = rank; a->rows = w->rows; a->cols = w->cols; a->scale = scale * alpha / (float)rank;
            a->A = bn_alloc((size_t)rank * w->cols * sizeof(float)); a->B = bn_alloc((size_t)w->rows * rank * sizeof(float));
            if (!a->A || !a->B) { s = bn_err(BITNET_ERR_NOMEM, "out of memory for adapter %s", na); break; }
            int64_t sa[2] = {rank, w->cols}, sb[2] = {w->rows, rank};
            s = bn_arch_read_f32(st, na, 2, sa, a->A);
            if (!s) s = bn_arch_read_f32(st, nb, 2, sb, a->B);
        }
    if (!s && bn_st_count(st) != 2 * n)
        s = bn_err(BITNET_ERR_FORMAT, "%s: holds %d tensors, expected the %d lora_A/lora_B matrices of target_modules", mp, bn_st_count(st), 2 * n);
    if (!s) {   /* attach all or nothing */
        int k = 0;
        for (int l = 0; l < nl; l++)
            for (int sl = 0; sl < BN_LAYER_SLOTS; sl++) {
                bn_tmat *w = (mask & (1u << sl)) ? slot_mat(&m->layers[l], sl) : NULL;
                if (!w) continue;
                bn_lora_ad *a = made[k++], **tail = &w->lora;
                while (*tail) tail = &(*tail)->next;
                *tail = a;
            }
    } else for (int k = 0; k < n; k++) { bn_free(made[k]->A); bn_free(made[k]->B); free(made[k]); }
    free(made); bn_st_free(st); free(mp);
    return s;
}

void bn_lora_model_free(bitnet_model *m) {
    if (!m->layers) return;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int sl = 0; sl < BN_LAYER_SLOTS; sl++) {
            bn_tmat *w = slot_mat(&m->layers[l], sl);
            if (!w) continue;
            for (bn_lora_ad *a = w->lora, *nx; a; a = nx) { nx = a->next; bn_free(a->A); bn_free(a->B); free(a); }
            w->lora = NULL;
        }
}

void bn_lora_apply(const bn_tmat *w, const int8_t *xq, int ldx, const float *xs, int n, float *y) {
    float u[BN_LORA_MAX_INFER_RANK];
    for (const bn_lora_ad *a = w->lora; a; a = a->next)
        for (int t = 0; t < n; t++) {
            const int8_t *x = xq + (size_t)t * ldx;
            float inv = 1.0f / xs[t];
            for (int k = 0; k < a->r; k++) {
                const float *ar = a->A + (size_t)k * a->cols;
                float acc = 0;
                for (int j = 0; j < a->cols; j++) acc += ar[j] * ((float)x[j] * inv);
                u[k] = acc * a->scale;
            }
            float *yt = y + (size_t)t * a->rows;
            for (int i = 0; i < a->rows; i++) {
                const float *br = a->B + (size_t)i * a->r;
                float acc = 0;
                for (int k = 0; k < a->r; k++) acc += br[k] * u[k];
                yt[i] += acc;
            }
        }
}
