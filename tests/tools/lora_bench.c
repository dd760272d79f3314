/* lora_bench.c — LoRA training steps through the public API (bitnet_train.h) only, for the
 * memory and speed numbers of docs/PERFORMANCE.md: a LoRA trainer on MODEL (any layout the
 * trainer reads), random token windows, STEPS optimizer steps, the memory plan and each step's
 * tokens/s printed. Not part of the library or the test suite; build it with
 *   cc -O2 -Iinclude tests/tools/lora_bench.c build/libbitnet.a $(pkg-config --libs libcjson libpcre2-8) -lm -lpthread -o build/lora_bench
 * Usage: lora_bench MODEL THREADS SEQ RANK TARGETS CKPT(0/1) [STEPS=2] [DROPOUT=0] */
#include "bitnet.h"
#include "bitnet_train.h"
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: %s MODEL THREADS SEQ RANK TARGETS CKPT [STEPS] [DROPOUT]\n", argv[0]); return 2; }
    bitnet_train_params p = bitnet_train_default_params();
    p.param_set = BITNET_TRAIN_LORA;
    p.n_threads = atoi(argv[2]); p.seq = atoi(argv[3]); p.batch = 1; p.accum = 1;
    p.lora_rank = atoi(argv[4]); p.lora_alpha = 2.0f * p.lora_rank;
    p.grad_checkpoint = atoi(argv[6]);
    int steps = argc > 7 ? atoi(argv[7]) : 2;
    p.lora_dropout = argc > 8 ? (float)atof(argv[8]) : 0.0f;
    p.total_steps = steps;
    if (bitnet_lora_parse_targets(argv[5], &p.lora_targets)) { fprintf(stderr, "%s\n", bitnet_last_error()); return 2; }
    bitnet_train_memory mem;
    if (bitnet_train_plan(argv[1], &p, &mem)) { fprintf(stderr, "plan: %s\n", bitnet_last_error()); return 1; }
    printf("plan: weights %.3f GB, adapters %.3f GB, activations %.3f GB, total %.3f GB\n",
           mem.weights / 1e9, mem.adapters / 1e9, mem.activations / 1e9, mem.total / 1e9);
    bitnet_trainer *t;
    if (bitnet_trainer_new(argv[1], &p, &t)) { fprintf(stderr, "trainer: %s\n", bitnet_last_error()); return 1; }
    bitnet_trainer_info info;
    bitnet_trainer_get_info(t, &info);
    char tok[] = "/tmp/lora_bench_tokens.XXXXXX";
    int fd = mkstemp(tok);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) { fprintf(stderr, "cannot write a token file\n"); return 1; }
    uint64_t s = 12345;
    for (int i = 0; i < 8 * (p.seq + 1); i++) { s = s * 6364136223846793005ull + 1442695040888963407ull; uint32_t id = (uint32_t)((s >> 33) % (uint64_t)info.vocab_size); fwrite(&id, 4, 1, f); }
    fclose(f);
    if (bitnet_trainer_set_data(t, tok, NULL)) { fprintf(stderr, "data: %s\n", bitnet_last_error()); remove(tok); return 1; }
    printf("adapters: %.2f M parameters on a %.2f M-parameter base; %d threads, seq %d, rank %d (%s), checkpointing %d\n",
           info.n_params / 1e6, info.n_base_params / 1e6, p.n_threads, p.seq, p.lora_rank, argv[5], p.grad_checkpoint);
    int rc = 0;
    for (int k = 0; k < steps; k++) {
        bitnet_train_stats st;
        if (bitnet_trainer_step(t, &st)) { fprintf(stderr, "step: %s\n", bitnet_last_error()); rc = 1; break; }
        printf("step %d: loss %.4f, %.1f s, %.2f tok/s\n", k + 1, st.loss, st.seconds, st.tokens / st.seconds);
        fflush(stdout);
    }
    bitnet_trainer_free(t);
    remove(tok);
    return rc;
}
