/* test_load_files.c — loading through a file provider (bitnet_files): a golden model from
 * in-memory buffers, a sharded copy through a counting provider (every open is closed once),
 * one .safetensors file given by path, and the errors a provider's missing file gives. Each
 * must give logits bit-identical to loading the folder. */
#include "t.h"
#include "bitnet.h"
#include "io/safetensors.h"
#include <sys/stat.h>
#include <unistd.h>

static const char *MODEL = "bitnet-b158-packed";
static const int32_t IDS[4] = {1024, 5, 9, 77};

/* Logits [4][vocab] of IDS through m (malloc'd), or NULL. */
static float *logits_of(bitnet_model *m) {
    bitnet_model_info in; bitnet_model_get_info(m, &in);
    bitnet_ctx *c; bitnet_ctx_params p = {.n_ctx = 8, .n_threads = 1};
    if (bitnet_ctx_new(m, &p, &c)) return NULL;
    float *l = malloc((size_t)4 * in.vocab_size * 4);
    if (bitnet_ctx_eval(c, IDS, 4, l, 1)) { free(l); l = NULL; }
    bitnet_ctx_free(c);
    return l;
}
static int vocab_of(bitnet_model *m) { bitnet_model_info in; bitnet_model_get_info(m, &in); return in.vocab_size; }

/* A provider reading dir/name into malloc'd buffers, counting opens and closes. */
typedef struct { const char *dir; int opens, closes; } counting;
static bitnet_status cnt_open(void *ud, const char *name, const void **data, size_t *size) {
    counting *c = ud; char p[700];
    snprintf(p, sizeof p, "%s/%s", c->dir, name);
    struct stat sb;
    if (stat(p, &sb) || !S_ISREG(sb.st_mode)) return BITNET_ERR_IO;
    void *b = t_read_file(p, size);
    if (!b) return BITNET_ERR_IO;
    *data = b; c->opens++;
    return BITNET_OK;
}
static void cnt_close(void *ud, const void *data, size_t size) { counting *c = ud; c->closes++; free((void *)data); }

int main(void) {
    char dir[512]; snprintf(dir, sizeof dir, "%s/%s", t_golden(), MODEL);
    bitnet_model *ref = NULL;
    bitnet_status s = bitnet_model_load(dir, &ref);
    CHECK("folder load", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) T_DONE();
    int V = vocab_of(ref);
    float *lr = logits_of(ref);

    /* 1. in-memory buffers */
    char p[700]; size_t nc, nm;
    snprintf(p, sizeof p, "%s/config.json", dir); char *cfg = t_read_file(p, &nc);
    snprintf(p, sizeof p, "%s/model.safetensors", dir); char *st = t_read_file(p, &nm);
    bitnet_file_buf bufs[] = {{"config.json", cfg, nc}, {"model.safetensors", st, nm}, {NULL, NULL, 0}};
    bitnet_files mem = bitnet_files_from_memory(bufs);
    bitnet_model *a = NULL;
    s = bitnet_model_load_files(&mem, NULL, &a);
    CHECK("load from memory buffers", s == BITNET_OK, "%s", bitnet_last_error());
    if (a) {
        float *la = logits_of(a);
        CHECK("memory logits == folder logits (bit-identical)", la && lr && !memcmp(la, lr, (size_t)4 * V * 4), "");
        bitnet_model_info ia, ib; bitnet_model_get_info(a, &ia); bitnet_model_get_info(ref, &ib);
        CHECK("memory model info == folder model info", ia.n_params == ib.n_params && ia.weight_bytes == ib.weight_bytes && !strcmp(ia.weight_format, ib.weight_format), "");
        free(la); bitnet_model_free(a);
    }
    /* 2. a missing file through a provider: error names it; a NULL provider is an argument error */
    bitnet_file_buf nocfg[] = {{"model.safetensors", st, nm}, {NULL, NULL, 0}};
    mem = bitnet_files_from_memory(nocfg); a = NULL;
    s = bitnet_model_load_files(&mem, NULL, &a);
    CHECK("provider without config.json: IO error naming it", s == BITNET_ERR_IO && !a && strstr(bitnet_last_error(), "config.json"), "%d %s", s, bitnet_last_error());
    bitnet_file_buf noweights[] = {{"config.json", cfg, nc}, {NULL, NULL, 0}};
    mem = bitnet_files_from_memory(noweights);
    s = bitnet_model_load_files(&mem, NULL, &a);
    CHECK("provider without weights: IO error naming model.safetensors", s == BITNET_ERR_IO && !a && strstr(bitnet_last_error(), "model.safetensors"), "%d %s", s, bitnet_last_error());
    bitnet_files none = {NULL, NULL, NULL};
    CHECK("provider without open: ARG error", bitnet_model_load_files(&none, NULL, &a) == BITNET_ERR_ARG && !a, "%s", bitnet_last_error());
    bitnet_file_buf badst[] = {{"config.json", cfg, nc}, {"model.safetensors", st, 100}, {NULL, NULL, 0}};
    mem = bitnet_files_from_memory(badst);
    s = bitnet_model_load_files(&mem, NULL, &a);
    CHECK("truncated in-memory safetensors: FORMAT error naming the file", s == BITNET_ERR_FORMAT && !a && strstr(bitnet_last_error(), "model.safetensors"), "%d %s", s, bitnet_last_error());

    /* 3. a sharded copy through a counting provider: same logits, each open closed once */
    char tmp[] = "/tmp/bitnet-files-XXXXXX";
    if (!mkdtemp(tmp)) { printf("FAIL harness: mkdtemp\n"); return 1; }
    snprintf(p, sizeof p, "%s/config.json", tmp); FILE *f = fopen(p, "wb"); fwrite(cfg, 1, nc, f); fclose(f);
    bn_st *gs; snprintf(p, sizeof p, "%s/model.safetensors", dir); bn_st_open(p, &gs);
    bn_st_writer *w[2]; bn_st_writer_new(&w[0]); bn_st_writer_new(&w[1]);
    char *idx = malloc(1 << 16); size_t il = 0;
    il += sprintf(idx + il, "{\"weight_map\": {");
    for (int i = 0; i < bn_st_count(gs); i++) {
        const bn_tensor *t = bn_st_at(gs, i);
        bn_st_writer_add(w[i % 2], t->name, t->dtype, t->ndim, t->shape, t->data);
        il += sprintf(idx + il, "%s\"%s\": \"s%d.safetensors\"", i ? ", " : "", t->name, i % 2);
    }
    il += sprintf(idx + il, "}}");
    for (int k = 0; k < 2; k++) { snprintf(p, sizeof p, "%s/s%d.safetensors", tmp, k); bn_st_writer_save(w[k], p); bn_st_writer_free(w[k]); }
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", tmp); f = fopen(p, "wb"); fwrite(idx, 1, il, f); fclose(f);
    free(idx); bn_st_free(gs);
    counting cn = {tmp, 0, 0};
    bitnet_files cf = {&cn, cnt_open, cnt_close};
    a = NULL;
    s = bitnet_model_load_files(&cf, NULL, &a);
    CHECK("sharded model through a reader provider", s == BITNET_OK, "%s", bitnet_last_error());
    if (a) {
        float *la = logits_of(a);
        CHECK("sharded provider logits == folder logits", la && lr && !memcmp(la, lr, (size_t)4 * V * 4), "");
        free(la);
        CHECK("config.json and the index are closed right after parsing", cn.opens == 4 && cn.closes == 2, "opens %d closes %d", cn.opens, cn.closes);
        bitnet_model_free(a);
    }
    CHECK("every open is closed once by bitnet_model_free", cn.opens == 4 && cn.closes == 4, "opens %d closes %d", cn.opens, cn.closes);

    /* 4. bitnet_model_load_ex on one .safetensors file (config.json beside it) */
    snprintf(p, sizeof p, "%s/s0.safetensors", tmp);
    s = bitnet_model_load_ex(p, NULL, &a);
    CHECK("a lone shard as a single file: missing tensor error", s == BITNET_ERR_FORMAT && !a, "%d %s", s, bitnet_last_error());
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    s = bitnet_model_load_ex(p, NULL, &a);
    CHECK("load_ex on a .safetensors file", s == BITNET_OK, "%s", bitnet_last_error());
    if (a) {
        float *la = logits_of(a);
        CHECK("single-file logits == folder logits", la && lr && !memcmp(la, lr, (size_t)4 * V * 4), "");
        free(la); bitnet_model_free(a);
    }
    snprintf(p, sizeof p, "%s/config.json", dir);
    s = bitnet_model_load_ex(p, NULL, &a);
    CHECK("load_ex on a non-.safetensors file: IO error naming it", s == BITNET_ERR_IO && !a && strstr(bitnet_last_error(), "config.json"), "%s", bitnet_last_error());

    s = bitnet_model_load_ex("/nonexistent/model", NULL, &a);
    CHECK("a path that does not exist says so", s == BITNET_ERR_IO && !a && strstr(bitnet_last_error(), "/nonexistent/model") && strstr(bitnet_last_error(), "No such file"), "%s", bitnet_last_error());
    char cmd[600]; snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmp);
    free(lr); free(cfg); free(st);
    bitnet_model_free(ref);
    T_DONE();
}
