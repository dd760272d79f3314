/* train_export.c — master weights -> 2B-4T packed checkpoint (see train_export.h). */
#include "train/train_export.h"
#include "train/train.h"
#include "arch/arch.h"
#include "io/ternary.h"
#include "io/safetensors.h"
#include <stdio.h>
#include <errno.h>
#include <sys/stat.h>

static bitnet_status copy_file(const char *src, const char *dst) {
    char *buf; size_t n;
    bitnet_status s = bn_read_file(src, &buf, &n);
    if (s) return s;
    s = bn_write_file_atomic(dst, buf, n);
    free(buf);
    return s;
}

/* Write parameter p (values x) into w under its 2B-4T name: BitLinear weights ternarized and
 * packed (ternary.h) with a bf16 "<name>_scale" = mean|W| (autobitlinear); the rest bf16. */
static bitnet_status export_param(bn_st_writer *w, const bn_tparam *p, const float *x) {
    char nm[160], sn[176];
    bn_arch_tensor_name(BN_NAMES_BITNET, (bn_slot)p->slot, p->layer, nm, sizeof nm);
    bitnet_status s = BITNET_OK;
    if (p->kind == BN_PK_LINEAR) {
        int out = (int)p->shape[0], in = (int)p->shape[1];
        int8_t *q = malloc(p->numel);
        uint8_t *pk = malloc(p->numel / 4);
        if (!q || !pk) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
        else {
            float mean = bn_ternarize(x, p->numel, q);
            bn_pack_2b4t(q, out, in, pk);
            int64_t sh[2] = {out / 4, in}, sh1[1] = {1};
            s = bn_st_writer_add(w, nm, BN_U8, 2, sh, pk);
            uint16_t sc = bn_f32_to_bf16(mean);
            snprintf(sn, sizeof sn, "%s_scale", nm);
            if (!s) s = bn_st_writer_add(w, sn, BN_BF16, 1, sh1, &sc);
        }
        free(q); free(pk);
        return s;
    }
    uint16_t *h = malloc(p->numel * 2);
    if (!h) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (size_t j = 0; j < p->numel; j++) h[j] = bn_f32_to_bf16(x[j]);
    s = bn_st_writer_add(w, nm, BN_BF16, p->ndim, p->shape, h);
    free(h);
    return s;
}

bitnet_status bn_export_packed(const char *in_dir, const char *out_dir) {
    bn_train_model *m;
    bitnet_status s = bn_train_model_from_dir(in_dir, 1, 1, &m);
    if (s) return s;
    for (int i = 0; i < m->n_tp; i++)
        if (m->tp[i].kind == BN_PK_LINEAR && m->tp[i].shape[0] % 4) {
            s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has %lld output rows, not a multiple of 4 as the packed layout needs",
                       in_dir, m->tp[i].name, (long long)m->tp[i].shape[0]);
            bn_train_model_free(m); return s;
        }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) { bn_train_model_free(m); return bn_err(BITNET_ERR_IO, "%s: cannot create directory: %s", out_dir, strerror(errno)); }
    bn_st_writer *w;
    if ((s = bn_st_writer_new(&w))) { bn_train_model_free(m); return s; }
    for (int i = 0; i < m->n_tp && !s; i++) s = export_param(w, &m->tp[i], m->params + m->tp[i].off);
    char *mp = bn_path_join(out_dir, "model.safetensors"), *cp = bn_path_join(out_dir, "config.json");
    if (!s && (!mp || !cp)) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) s = bn_st_writer_save(w, mp);
    bn_st_writer_free(w);
    if (!s) {
        bn_config c = m->cfg;
        c.family = BN_FAM_BITNET; c.linear_class = BN_LC_AUTOBITLINEAR;
        s = bn_config_save(&c, cp, 1);
    }
    free(mp); free(cp);
    if (!s) s = bn_copy_tokenizer_files(in_dir, out_dir, NULL);
    bn_train_model_free(m);
    return s;
}

bitnet_status bn_copy_tokenizer_files(const char *src_dir, const char *dst_dir, int *n_copied) {
    static const char *tok[] = {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "generation_config.json", "special_tokens_map.json"};
    bitnet_status s = BITNET_OK;
    if (n_copied) *n_copied = 0;
    for (size_t i = 0; i < sizeof tok / sizeof *tok && !s; i++) {
        char *src = bn_path_join(src_dir, tok[i]), *dst = bn_path_join(dst_dir, tok[i]);
        if (!src || !dst) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
        else if (bn_file_exists(src) && !(s = copy_file(src, dst)) && n_copied) ++*n_copied;
        free(src); free(dst);
    }
    return s;
}
