/* test_arch.c — the architecture table (src/arch/arch.h) describes each golden checkpoint exactly:
 * the names it generates for the family (plus "<name>_scale" for packed BitLinear weights) are
 * the checkpoint's tensor names, one for one, with the shapes it gives; the trainer's parameter
 * list is the same table; GGUF names follow llama.cpp's bitnet arch. */
#include "t.h"
#include "arch/arch.h"
#include "train/train.h"

static void check_family(const char *model) {
    char dir[512], p[600], nm[160], what[256];
    snprintf(dir, sizeof dir, "%s/%s", t_golden(), model);
    bn_config c; bn_st *st;
    if (bn_config_load(dir, &c) || bn_st_open_dir(dir, &st)) { CHECK(model, 0, "%s", bitnet_last_error()); return; }
    bn_naming n = bn_arch_naming(&c);
    int found = 0, bad = 0, expected = 0;
    for (int l = -1; l < c.n_layers; l++)
        for (int s = l < 0 ? BN_LAYER_SLOTS : 0; s < (l < 0 ? BN_SLOTS : BN_LAYER_SLOTS); s++) {
            if (s == BN_S_HEAD && c.tied) continue;
            bn_arch_tensor_name(n, (bn_slot)s, l, nm, sizeof nm);
            int64_t sh[2]; int nd = bn_arch_shape(&c, (bn_slot)s, sh);
            const bn_tensor *t = bn_st_find(st, nm);
            expected++;
            if (!t) { bad++; printf("# %s: no %s\n", model, nm); continue; }
            found++;
            int packed = t->dtype == BN_U8;
            if (packed) { expected++; snprintf(p, sizeof p, "%s_scale", nm); if (bn_st_find(st, p)) found++; else bad++; }
            if (t->ndim != nd || t->shape[0] != (packed ? sh[0] / 4 : sh[0]) || (nd == 2 && t->shape[1] != sh[1])) { bad++; printf("# %s: %s shape\n", model, nm); }
        }
    snprintf(what, sizeof what, "%s: table names = checkpoint names (%d tensors), shapes match", model, bn_st_count(st));
    CHECK(what, !bad && found == expected && found == bn_st_count(st), "%d bad, %d found, %d expected, %d in file", bad, found, expected, bn_st_count(st));
    bn_train_model *m;
    if (!bn_train_model_new(&c, 1, 1, &m)) {
        int same = m->n_tp == (c.tied ? 2 : 3) + c.n_layers * BN_LAYER_SLOTS;
        for (int i = 0; i < m->n_tp && same; i++) {
            bn_arch_tensor_name(n, (bn_slot)m->tp[i].slot, m->tp[i].layer, nm, sizeof nm);
            same = !strcmp(nm, m->tp[i].name) && bn_st_find(st, nm);
        }
        snprintf(what, sizeof what, "%s: trainer parameters are the table's tensors", model);
        CHECK(what, same, "");
        bn_train_model_free(m);
    }
    bn_st_free(st);
}

int main(void) {
    check_family("bitnet-b158-packed");
    check_family("bitnet-b158-packed-bitlinear");
    check_family("bitnet-b158-master");
    check_family("bitnet-1bitllm");
    char b[160];
    CHECK("gguf: blk.N.attn_q", !strcmp(bn_arch_tensor_name(BN_NAMES_GGUF, BN_S_Q, 7, b, sizeof b), "blk.7.attn_q.weight"), "%s", b);
    CHECK("gguf: blk.N.ffn_sub_norm", !strcmp(bn_arch_tensor_name(BN_NAMES_GGUF, BN_S_FFN_SUB_NORM, 0, b, sizeof b), "blk.0.ffn_sub_norm.weight"), "%s", b);
    CHECK("gguf: token_embd / output", !strcmp(bn_arch_tensor_name(BN_NAMES_GGUF, BN_S_EMBED, -1, b, sizeof b), "token_embd.weight")
          && !strcmp(bn_arch_tensor_name(BN_NAMES_GGUF, BN_S_HEAD, -1, b, sizeof b), "output.weight"), "%s", b);
    CHECK("1bitLLM sub-norm names", !strcmp(bn_arch_tensor_name(BN_NAMES_1BITLLM, BN_S_ATTN_SUB_NORM, 3, b, sizeof b), "model.layers.3.self_attn.inner_attn_ln.weight"), "%s", b);
    T_DONE();
}
