/* bitnet.c — the `bitnet` command-line tool: a dispatcher over subcommands (tools/cmd_*.c). */
#include "cli.h"
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* cmd_serve.c is built only with libmicrohttpd (see the Makefile). */
__attribute__((weak)) int cmd_serve(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "bitnet: 'serve' is not in this binary: it was built without HTTP support "
                    "(install libmicrohttpd-dev, found by pkg-config, and rebuild)\n");
    return 2;
}

static const struct { const char *name; int (*fn)(int, char **); const char *help; } CMDS[] = {
    {"run", cmd_run, "generate text or ids from a prompt"},
    {"chat", cmd_chat, "interactive multi-turn chat"},
    {"logits", cmd_logits, "write the logits of one forward pass to a file"},
    {"info", cmd_info, "print a model's architecture, sizes and memory"},
    {"tokenize", cmd_tokenize, "print the token ids of stdin"},
    {"tokenize-file", cmd_tokenize_file, "turn a text file into a uint32 token file"},
    {"tokenizer-train", cmd_tokenizer_train, "train a byte-level BPE tokenizer.json"},
    {"train", cmd_train, "train or fine-tune a model (quantization-aware)"},
    {"export", cmd_export, "write a packed inference checkpoint"},
    {"bench", cmd_bench, "benchmark kernels and models"},
    {"convert", cmd_convert, "write a model as a GGUF file (tq2_0, tq1_0, i2_s)"},
    {"perplexity", cmd_perplexity, "perplexity of a text (llama-perplexity method), KL against a base run"},
    {"eval", cmd_eval, "zero-shot multiple-choice accuracy (lm-eval-harness loglikelihood)"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with a chat page"},
};
#define NCMDS (int)(sizeof CMDS / sizeof CMDS[0])

/* A message of the tools' own that the next cli_fail prints instead of the library's. */
static char cli_err[1024];

int cli_fail(const char *what) {
    fprintf(stderr, "bitnet: %s: %s\n", what, cli_err[0] ? cli_err : bitnet_last_error());
    cli_err[0] = 0;
    return 1;
}

int cli_read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb)) return -1;
    if (S_ISDIR(sb.st_mode)) { errno = EISDIR; return -1; }
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *q = realloc(b, 2 * cap + 1);
        if (!q) { free(b); b = NULL; break; }
        b = q; cap *= 2;
    }
    int err = !b || ferror(f);
    fclose(f);
    if (err) { free(b); errno = b ? EIO : ENOMEM; return -1; }
    b[n] = 0;
    *out = b;
    if (len) *len = n;
    return 0;
}

char *cli_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) { memcpy(p, dir, a); p[a] = '/'; memcpy(p + a + 1, name, b + 1); }
    return p;
}

int cli_file_exists(const char *path) { struct stat sb; return stat(path, &sb) == 0; }
int cli_is_dir(const char *path) { struct stat sb; return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode); }

int cli_parse_ids(const char *s, int32_t **out) {
    int cap = 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return -1;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        char *end; errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) { free(ids); return -1; }
        if (n == cap) { cap *= 2; int32_t *q = realloc(ids, cap * sizeof *q); if (!q) { free(ids); return -1; } ids = q; }
        ids[n++] = (int32_t)v;
        p = end;
        if (*p && *p != ',' && *p != ' ') { free(ids); return -1; }
    }
    *out = ids;
    return n;
}

int cli_int(const char *opt, const char *v, int lo, int hi, int *out) {
    char *end; errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "bitnet: %s needs an integer in [%d, %d], got '%s'\n", opt, lo, hi, v ? v : "");
        return 0;
    }
    *out = (int)x; return 1;
}

int cli_float(const char *opt, const char *v, float *out) {
    char *end; errno = 0;
    float x = v ? strtof(v, &end) : 0;
    if (!v || end == v || *end || errno) { fprintf(stderr, "bitnet: %s needs a number, got '%s'\n", opt, v ? v : ""); return 0; }
    *out = x; return 1;
}

#include <unistd.h>
#include <time.h>
static double load_t0;
static void load_progress(void *ud, int done, int total) {
    (void)ud;
    double el = cli_time() - load_t0, rate = el > 0 ? done / el : 0;
    fprintf(stderr, "\rloading: layer %d/%d  %.1f layers/s  ETA %.1fs   ", done, total, rate, rate > 0 ? (total - done) / rate : 0.0);
    if (done == total) fprintf(stderr, "\r%60s\r", "");
}

bitnet_status cli_load_model(const char *dir, bitnet_model **out) { return cli_load_model_on(dir, NULL, out); }

bitnet_status cli_load_model_on(const char *dir, const char *device, bitnet_model **out) {
    struct stat sb;
    *out = NULL;
    if (stat(dir, &sb)) {
        snprintf(cli_err, sizeof cli_err, "%s: %s", dir, errno == ENOENT ? "no such file or folder" : strerror(errno));
        return BITNET_ERR_IO;
    }
    load_t0 = cli_time();
    bitnet_model_params p = bitnet_model_default_params();
    p.progress = isatty(2) ? load_progress : NULL;
    p.device = device;
    return bitnet_model_load_ex(dir, &p, out);
}

bitnet_status cli_load_tokenizer(const char *path, bitnet_tokenizer **out) {
    bitnet_status s = bitnet_tokenizer_load(path, out);
    const char *note = s ? NULL : bitnet_tokenizer_notice(*out);
    if (note) fprintf(stderr, "bitnet: %s: %s\n", path, note);
    return s;
}

double cli_time(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

size_t cli_peak_rss(void) {
    struct rusage ru; getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bitnet <command> [options]   (bitnet help <command> or bitnet <command> -h: its options)\n"
               "       bitnet --version\n\ncommands:\n");
    for (int i = 0; i < NCMDS; i++) fprintf(f, "  %-16s %s\n", CMDS[i].name, CMDS[i].help);
}

static int find_cmd(const char *name) {
    for (int i = 0; i < NCMDS; i++) if (!strcmp(name, CMDS[i].name)) return i;
    fprintf(stderr, "bitnet: unknown command '%s'\n", name);
    usage(stderr);
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) { usage(argc < 2 ? stderr : stdout); return argc < 2 ? 2 : 0; }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) { printf("bitnet %s\n", bitnet_version()); return 0; }
    if (!strcmp(argv[1], "help")) {          /* bitnet help [CMD]: the command's -h */
        if (argc < 3) { usage(stdout); return 0; }
        int i = find_cmd(argv[2]);
        if (i < 0) return 2;
        char *av[] = {argv[2], "--help", NULL};
        return CMDS[i].fn(2, av);
    }
    int i = find_cmd(argv[1]);
    return i < 0 ? 2 : CMDS[i].fn(argc - 1, argv + 1);
}
