/* tests/t_train.h: a fixture shared by the training tests (test_train.c, test_lora.c): the tiny
 * model shape they build from scratch. Not a harness (that is t.h). Needs model/model.h's bn_config. */
#ifndef BITNET_T_TRAIN_H
#define BITNET_T_TRAIN_H
#include <string.h>

/* A 2-layer model of hidden 16, vocab 23: fam 0 = BitNet (relu2, tied, 4 heads), 1 = 1bitLLM
 * (silu, untied, 2 heads); 2 KV heads either way. */
static inline bn_config tiny_cfg(int fam) {
    bn_config c; memset(&c, 0, sizeof c);
    c.family = fam ? BN_FAM_1BITLLM : BN_FAM_BITNET;
    c.vocab_size = 23; c.hidden_size = 16; c.intermediate_size = 24; c.n_layers = 2;
    c.n_heads = fam ? 2 : 4; c.n_kv_heads = 2; c.head_dim = c.hidden_size / c.n_heads; c.max_pos = 64;
    c.rope_theta = 10000.0f; c.norm_eps = 1e-5f; c.act = fam ? BN_ACT_SILU : BN_ACT_RELU2; c.tied = !fam;
    c.bos_id = c.eos_id = -1;
    return c;
}
#endif
