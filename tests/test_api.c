/* test_api.c — the public calls that tools/cmd_bench.c uses instead of src/ internals
 * (bitnet_model_synthetic, bitnet_model_info.weight_bytes_per_token, bitnet_bench_kernel):
 * their errors and that their numbers are consistent. Uses the public headers only.
 * Not: a speed test (the timings are only checked to be positive and finite). */
#include "t.h"
#include "bitnet.h"
#include "bitnet_bench.h"

int main(void) {
    bitnet_model *m = (bitnet_model *)1;
    CHECK("synthetic: unknown preset is ARG", bitnet_model_synthetic("7b", 1, NULL, &m) == BITNET_ERR_ARG && !m
          && strstr(bitnet_last_error(), "7b"), "%s", bitnet_last_error());
    bitnet_model_params mp = bitnet_model_default_params();
    mp.kernels = "no-such-set";
    m = (bitnet_model *)1;
    CHECK("synthetic: unknown kernel set is UNSUPPORTED", bitnet_model_synthetic("1bitllm-large", 1, &mp, &m) == BITNET_ERR_UNSUPPORTED && !m,
          "%s", bitnet_last_error());

    /* weight bytes per token: the ternary matrices plus the head as it is now (q8 is smaller) */
    const char *dir = "models/bitnet-tinystories";
    if (bitnet_model_load(dir, &m) == BITNET_OK) {
        bitnet_model_info a, b;
        bitnet_model_get_info(m, &a);
        size_t head = (size_t)a.vocab_size * a.hidden_size;
        CHECK("info: weight bytes per token = ternary + exact head", a.weight_bytes_per_token >= a.ternary_bytes + 2 * head
              && a.weight_bytes_per_token <= a.ternary_bytes + 4 * head, "%zu vs ternary %zu head %zu", a.weight_bytes_per_token, a.ternary_bytes, head);
        CHECK("set q8 head", bitnet_model_set_head(m, BITNET_HEAD_Q8) == BITNET_OK, "%s", bitnet_last_error());
        bitnet_model_get_info(m, &b);
        CHECK("info: the q8 head reads fewer bytes per token", b.weight_bytes_per_token < a.weight_bytes_per_token
              && b.weight_bytes_per_token > b.ternary_bytes + head, "%zu vs %zu", b.weight_bytes_per_token, a.weight_bytes_per_token);
        bitnet_model_free(m);
    } else CHECK("load the bundled model", 0, "%s", bitnet_last_error());

    bitnet_bench_kernel_result r;
    CHECK("bench: bad shape is ARG", bitnet_bench_kernel(NULL, BITNET_BENCH_TERNARY, 0, 256, 1, &r) == BITNET_ERR_ARG, "%s", bitnet_last_error());
    CHECK("bench: bad op is ARG", bitnet_bench_kernel(NULL, (bitnet_bench_op)9, 64, 256, 1, &r) == BITNET_ERR_ARG, "%s", bitnet_last_error());
    CHECK("bench: unknown kernel set is UNSUPPORTED", bitnet_bench_kernel("no-such-set", BITNET_BENCH_TERNARY, 64, 256, 1, &r) == BITNET_ERR_UNSUPPORTED,
          "%s", bitnet_last_error());
    const char *const *ks = bitnet_kernel_sets();
    for (int op = BITNET_BENCH_TERNARY; op <= BITNET_BENCH_HEAD_Q4; op++) {
        char name[64];
        snprintf(name, sizeof name, "bench: op %d on %s gives positive numbers", op, ks[0]);
        bitnet_status s = bitnet_bench_kernel(ks[0], (bitnet_bench_op)op, 64, 256, 2, &r);
        CHECK(name, s == BITNET_OK && r.weight_bytes > 0 && r.gemm_n == 128 && isfinite(r.gemv_gb_per_s) && r.gemv_gb_per_s > 0
              && isfinite(r.gemm_gops) && r.gemm_gops > 0, "status %d (%s) bytes %zu gemv %g gemm %g", s, bitnet_last_error(),
              r.weight_bytes, r.gemv_gb_per_s, r.gemm_gops);
    }
    T_DONE();
}
