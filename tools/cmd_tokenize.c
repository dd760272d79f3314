/* cmd_tokenize.c — `bitnet tokenize` (ids of stdin, or the tokenizer benchmark with --bench) and
 * `bitnet tokenize-file` (a text file to a uint32 little-endian token file for training). */
#include "cli.h"
#include "args.h"
#include <stdint.h>

static char *slurp(FILE *f, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    size_t r;
    while ((r = fread(b + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) { char *q = realloc(b, cap *= 2); if (!q) { free(b); return NULL; } b = q; }
    }
    if (ferror(f)) { free(b); return NULL; }
    b[len] = 0; /* len < cap always: the buffer grows when it fills */
    *n = len; return b;
}

static int bench(const char *model, const char *file, int repeat) {
    double t0 = cli_time();
    bitnet_tokenizer *tok = NULL;
    if (cli_load_tokenizer(model, &tok)) return cli_fail("cannot load the tokenizer");
    double load_ms = (cli_time() - t0) * 1e3;
    FILE *f = fopen(file, "rb");
    if (!f) { fprintf(stderr, "bitnet tokenize: cannot open %s\n", file); bitnet_tokenizer_free(tok); return 1; }
    size_t n = 0; char *text = slurp(f, &n);
    fclose(f);
    if (!text) { fprintf(stderr, "bitnet tokenize: cannot read %s\n", file); bitnet_tokenizer_free(tok); return 1; }
    double best = 1e30, total = 0; int ntok = 0;
    for (int r = 0; r < repeat; r++) {
        int32_t *ids = NULL;
        double t1 = cli_time();
        if (bitnet_tokenizer_encode(tok, text, n, 0, &ids, &ntok)) { free(text); bitnet_tokenizer_free(tok); return cli_fail("encode"); }
        double dt = cli_time() - t1;
        total += dt; if (dt < best) best = dt;
        free(ids);
    }
    printf("tokenizer: %s (vocab %d)\n", model, bitnet_tokenizer_vocab_size(tok));
    printf("load: %.1f ms\n", load_ms);
    printf("encode: %zu bytes -> %d tokens (%.2f bytes/token), best %.1f ms, %.1f MB/s (mean %.1f MB/s over %d runs)\n",
           n, ntok, ntok ? (double)n / ntok : 0.0, best * 1e3, n / best / 1e6, n * (double)repeat / total / 1e6, repeat);
    free(text); bitnet_tokenizer_free(tok);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *benchf = NULL;
    int bos = 0, repeat = 3, decode = 0;
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "PATH", "a model folder, a tokenizer.json or a tokenizer.model"),
        OPT_FLAG(0, "bos", &bos, "prepend BOS"),
        OPT_FLAG(0, "decode", &decode, "read ids (space or comma separated) and write their text"),
        OPT_STR(0, "bench", &benchf, "FILE", "encode FILE --repeat times; print load time and MB/s"),
        OPT_INT(0, "repeat", 1, 1000, &repeat, "N", "encodings for --bench"),
        OPT_END,
    };
    args_spec spec = {"tokenize",
        "usage: bitnet tokenize -m PATH [--bos] < text\n"
        "       bitnet tokenize -m PATH --decode < ids\n"
        "       bitnet tokenize -m PATH --bench FILE [--repeat N]\n"
        "  prints the ids of stdin (raw bytes) on one line\n",
        {opts}, {"options"}, 0};
    int r = args_parse(&spec, argc, argv, NULL, NULL);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (!model) return args_error(&spec, "need -m PATH"), 2;
    if (benchf) return bench(model, benchf, repeat);
    bitnet_tokenizer *tok = NULL;
    if (cli_load_tokenizer(model, &tok)) return cli_fail("cannot load the tokenizer");
    size_t n = 0; char *text = slurp(stdin, &n);
    if (!text) { fprintf(stderr, "bitnet tokenize: cannot read stdin\n"); bitnet_tokenizer_free(tok); return 1; }
    int32_t *ids = NULL; int nid = 0;
    if (decode) {
        for (size_t i = 0; i < n; i++) if (text[i] == '\n' || text[i] == '\t') text[i] = ' ';
        nid = cli_parse_ids(text, &ids);
        char *out = NULL; size_t nout = 0;
        int bad = nid < 0;
        for (int i = 0; i < nid && !bad; i++) bad = ids[i] >= bitnet_tokenizer_vocab_size(tok);
        if (bad) fprintf(stderr, "bitnet tokenize --decode: stdin must hold token ids below %d\n", bitnet_tokenizer_vocab_size(tok));
        else if (bitnet_tokenizer_decode_len(tok, ids, nid, &out, &nout)) { bad = cli_fail("decode"); }
        else if (fwrite(out, 1, nout, stdout) != nout || fflush(stdout)) { bad = 1; fprintf(stderr, "bitnet tokenize --decode: cannot write stdout\n"); }
        free(out); free(ids); free(text); bitnet_tokenizer_free(tok);
        return bad ? 1 : 0;
    }
    if (bitnet_tokenizer_encode(tok, text, n, bos, &ids, &nid)) { free(text); bitnet_tokenizer_free(tok); return cli_fail("encode"); }
    for (int i = 0; i < nid; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    printf("\n");
    free(ids); free(text); bitnet_tokenizer_free(tok);
    return 0;
}

/* End of the chunk starting at s, near s + want: just after a '\n' followed by an ASCII letter,
 * where no pre-token of the Llama 3 / GPT-2 patterns can span the boundary. */
static size_t chunk_end(const char *text, size_t n, size_t s, size_t want) {
    if (n - s <= want) return n;
    for (size_t i = s + want; i + 1 < n && i < s + 4 * want; i++)
        if (text[i - 1] == '\n' && ((text[i] | 32) >= 'a' && (text[i] | 32) <= 'z')) return i;
    return n; /* no safe boundary nearby: take the rest whole */
}

typedef struct { uint8_t *b; size_t n, cap; } u32buf;
static int push_ids(u32buf *o, const int32_t *ids, int k) {
    if (o->n + (size_t)k > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (o->n + (size_t)k > cap) cap *= 2;
        uint8_t *q = realloc(o->b, cap * 4);
        if (!q) return 0;
        o->b = q; o->cap = cap;
    }
    for (int i = 0; i < k; i++) {
        uint32_t v = (uint32_t)ids[i]; uint8_t *d = o->b + 4 * (o->n + (size_t)i);
        d[0] = (uint8_t)v; d[1] = (uint8_t)(v >> 8); d[2] = (uint8_t)(v >> 16); d[3] = (uint8_t)(v >> 24);
    }
    o->n += (size_t)k;
    return 1;
}

/* The next document [*ds, *de) at or after pos: the whole text, a line (--eos-between-lines:
 * blank lines skipped, the newline dropped) or the text up to the next sep (--doc-sep, the
 * separator dropped; empty documents skipped). Returns 0 when no document is left. */
static int next_doc(const char *text, size_t n, size_t *pos, int lines, const char *sep, size_t *ds, size_t *de) {
    size_t sl = sep ? strlen(sep) : 0;
    while (*pos < n || (*pos == 0 && n == 0 && !lines && !sep)) {
        size_t s = *pos, e = n;
        if (lines) { const char *q = memchr(text + s, '\n', n - s); e = q ? (size_t)(q - text) : n; *pos = q ? e + 1 : n; }
        else if (sep) { const char *q = memmem(text + s, n - s, sep, sl); e = q ? (size_t)(q - text) : n; *pos = q ? e + sl : n; }
        else *pos = n + 1;
        size_t k = s;
        if (lines) while (k < e && (text[k] == '\r' || text[k] == ' ' || text[k] == '\t')) k++;
        if ((lines || sep) && k == e) continue;
        if (lines && e > s && text[e - 1] == '\r') e--;
        *ds = s; *de = e;
        return 1;
    }
    return 0;
}

int cmd_tokenize_file(int argc, char **argv) {
    const char *model = NULL, *pos[2] = {NULL, NULL}, *sep = NULL;
    int bos = 0, npos = 0, lines = 0;
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "TOKENIZER", "a model folder, a tokenizer.json or a tokenizer.model"),
        OPT_FLAG(0, "bos", &bos, "put BOS first (before every document with --eos-between-lines / --doc-sep)"),
        OPT_FLAG(0, "eos-between-lines", &lines, "each non-blank line is a document: EOS after each"),
        OPT_STR(0, "doc-sep", &sep, "STR", "documents are separated by STR (e.g. '<|endoftext|>'): EOS after each"),
        OPT_END,
    };
    args_spec spec = {"tokenize-file",
        "usage: bitnet tokenize-file -m TOKENIZER [--bos] [--eos-between-lines | --doc-sep STR] IN.txt OUT.u32\n"
        "  writes the ids of IN.txt as uint32 little-endian (to a temp file, then renamed);\n"
        "  with --eos-between-lines or --doc-sep each document is encoded on its own and followed by\n"
        "  the tokenizer's EOS (the separator text itself is dropped); progress goes to stderr\n",
        {opts}, {"options"}, 2};
    int r = args_parse(&spec, argc, argv, pos, &npos);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    const char *in = pos[0], *out = pos[1];
    if (!model || npos != 2) return args_error(&spec, "need -m TOKENIZER IN.txt OUT.u32"), 2;
    if (lines && sep) return args_error(&spec, "give --eos-between-lines or --doc-sep, not both"), 2;
    if (sep && !sep[0]) return args_error(&spec, "--doc-sep needs a non-empty separator"), 2;
    bitnet_tokenizer *tok = NULL;
    if (cli_load_tokenizer(model, &tok)) return cli_fail("cannot load the tokenizer");
    int32_t eos = bitnet_tokenizer_eos(tok);
    if ((lines || sep) && eos < 0) { fprintf(stderr, "bitnet tokenize-file: %s has no EOS token to put between documents\n", model); bitnet_tokenizer_free(tok); return 1; }
    FILE *f = fopen(in, "rb");
    if (!f) { fprintf(stderr, "bitnet tokenize-file: cannot open %s\n", in); bitnet_tokenizer_free(tok); return 1; }
    size_t n = 0; char *text = slurp(f, &n);
    fclose(f);
    if (!text) { fprintf(stderr, "bitnet tokenize-file: cannot read %s\n", in); bitnet_tokenizer_free(tok); return 1; }
    u32buf buf = {0};
    int rc = 0;
    size_t ndoc = 0, p = 0, ds, de;
    double t0 = cli_time(), last = t0;
    while (next_doc(text, n, &p, lines, sep, &ds, &de)) {
        ndoc++;
        for (size_t s = ds; s < de || (s == ds && bos);) {   /* chunks of ~1 MiB at safe boundaries */
            size_t e = ds + chunk_end(text + ds, de - ds, s - ds, 1 << 20);
            int32_t *ids = NULL; int k = 0;
            int flags = (s == ds && bos ? BITNET_TOK_BOS : 0) | (s > ds ? BITNET_TOK_CONTINUE : 0);
            if (bitnet_tokenizer_encode_ex(tok, text + s, e - s, flags, &ids, &k)) { rc = cli_fail("encode"); goto done; }
            int okp = push_ids(&buf, ids, k);
            free(ids);
            if (!okp) { fprintf(stderr, "bitnet tokenize-file: out of memory\n"); rc = 1; goto done; }
            s = e;
            double now = cli_time();
            if (now - last > 0.5) {
                double rate = s / (now - t0 + 1e-9);
                fprintf(stderr, "\rtokenize-file: %5.1f%%  %zu tokens  %.1f MB/s  ETA %.0f s   ",
                        n ? 100.0 * s / n : 100.0, buf.n, rate / 1e6, rate > 0 ? (n - s) / rate : 0.0);
                last = now;
            }
            if (s >= de) break;
        }
        if ((lines || sep) && !push_ids(&buf, &eos, 1)) { fprintf(stderr, "bitnet tokenize-file: out of memory\n"); rc = 1; goto done; }
    }
    if (last > t0) fprintf(stderr, "\n");   /* end the progress line */
    if (bitnet_write_file_atomic(out, buf.b ? (const void *)buf.b : "", buf.n * 4)) { rc = cli_fail("write"); goto done; }
    if (lines || sep) fprintf(stderr, "tokenize-file: %zu documents, EOS (%d) after each\n", ndoc, (int)eos);
    fprintf(stderr, "tokenize-file: wrote %zu tokens to %s (%.1f s)\n", buf.n, out, cli_time() - t0);
done:
    free(buf.b); free(text); bitnet_tokenizer_free(tok);
    return rc;
}
