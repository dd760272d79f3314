/* lora_infer.c — LoRA adapters at inference (bitnet_model_load_lora, include/bitnet.h): the
 * adapter matrices of a PEFT folder attached to the model (m->lora[layer * BN_LAYER_SLOTS + slot],
 * a chain per matrix, so several adapters stack), and the low-rank term model.c adds after each
 * targeted BitLinear: y += scale * (alpha/r) * B (A x), x = the BitLinear's float input (the
 * norm output before the activation quantizer: PEFT's lora_A input, and the trainer's, lora.h).
 * Host code on host buffers: CPU backend only.
 * Not: a merger (adapters stay separate float matrices), or a trainer. */
#include "model/model.h"
#include "train/lora.h"
#include "arch/arch.h"
#include "io/safetensors.h"
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
    if (m->be->device != BN_DEV_CPU) return bn_err(BITNET_ERR_UNSUPPORTED, "lora: adapters run on the CPU backend only (this model uses %s)", m->be->name);
    if (!m->lora && !(m->lora = calloc((size_t)m->cfg.n_layers * BN_LAYER_SLOTS, sizeof *m->lora))) return bn_err(BITNET_ERR_NOMEM, "out of memory");
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
                bn_lora_ad *a = made[k++], **tail = &m->lora[l * BN_LAYER_SLOTS + sl];
                while (*tail) tail = &(*tail)->next;
                *tail = a;
            }
    } else for (int k = 0; k < n; k++) { bn_free(made[k]->A); bn_free(made[k]->B); free(made[k]); }
    free(made); bn_st_free(st); free(mp);
    return s;
}

void bn_lora_model_free(bitnet_model *m) {
    if (!m->lora) return;
    for (int i = 0; i < m->cfg.n_layers * BN_LAYER_SLOTS; i++)
        for (bn_lora_ad *a = m->lora[i], *nx; a; a = nx) { nx = a->next; bn_free(a->A); bn_free(a->B); free(a); }
    free(m->lora);
    m->lora = NULL;
}

void bn_lora_after(const bitnet_model *m, int layer, const int *slots, int nw, const float *x, int n, float *const *y) {
    float u[BN_LORA_MAX_INFER_RANK];
    for (int i = 0; i < nw; i++) {
        const bn_lora_ad *a0 = m->lora[layer * BN_LAYER_SLOTS + slots[i]];
        if (!a0) continue;
        int cols = a0->cols;
        for (int t = 0; t < n; t++) {
            const float *xt = x + (size_t)t * cols;
            for (const bn_lora_ad *a = a0; a; a = a->next) {
                for (int k = 0; k < a->r; k++) {
                    const float *ar = a->A + (size_t)k * cols;
                    float acc = 0;
                    for (int j = 0; j < cols; j++) acc += ar[j] * xt[j];
                    u[k] = acc * a->scale;
                }
                float *yt = y[i] + (size_t)t * a->rows;
                for (int r = 0; r < a->rows; r++) {
                    const float *br = a->B + (size_t)r * a->r;
                    float acc = 0;
                    for (int k = 0; k < a->r; k++) acc += br[k] * u[k];
                    yt[r] += acc;
                }
            }
        }
    }
}
