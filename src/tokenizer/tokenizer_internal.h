/* tokenizer_internal.h — the in-memory tokenizer shared by tokenizer.c (encode/decode/detok, config
 * files), tokenizer_json.c (HF tokenizer.json loader) and tokenizer_spm.c (SentencePiece
 * tokenizer.model loader). Not public: include/bitnet.h is the API.
 *
 * One representation serves both families: a BPE model over "keys" (the byte strings the
 * pre-tokenizer produces: raw bytes for byte-level tokenizers, the piece text otherwise), a merge
 * table (left id, right id) -> (rank, merged id), added tokens matched in the raw input, and small
 * step lists for the normalizer, pre-tokenizer and decoder. */
#ifndef BITNET_TOKENIZER_INTERNAL_H
#define BITNET_TOKENIZER_INTERNAL_H
#include "core/util.h"
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- small hash maps ---- */
typedef struct bn_strmap {   /* byte string -> id; strings live elsewhere (keys[id], klen[id]) */
    uint32_t *slot;          /* id + 1, 0 = empty */
    uint32_t mask;
} bn_strmap;

typedef struct bn_mergemap { /* (a << 32 | b) -> rank, merged id */
    uint64_t *key;           /* UINT64_MAX = empty */
    uint32_t *rank;
    int32_t *id;
    uint32_t mask;
    uint32_t n;
} bn_mergemap;

uint64_t bn_tok_hash(const void *p, size_t n);

/* ---- pipeline steps ---- */
enum { BN_NM_PREPEND = 1, BN_NM_REPLACE, BN_NM_SPM };
enum { BN_PT_SPLIT = 1, BN_PT_BYTELEVEL, BN_PT_METASPACE };
enum { BN_SPLIT_REMOVED = 0, BN_SPLIT_ISOLATED, BN_SPLIT_MERGED_PREV, BN_SPLIT_MERGED_NEXT, BN_SPLIT_CONTIGUOUS };
enum { BN_PREPEND_ALWAYS = 0, BN_PREPEND_NEVER, BN_PREPEND_FIRST };
enum { BN_DEC_BYTELEVEL = 1, BN_DEC_REPLACE, BN_DEC_BYTEFALLBACK, BN_DEC_FUSE, BN_DEC_STRIP, BN_DEC_METASPACE };

typedef struct bn_tok_step {
    int kind;
    char *a; size_t alen;       /* Prepend text / Replace pattern / Split literal / Metaspace replacement / Strip content */
    char *b; size_t blen;       /* Replace content */
    pcre2_code *re;             /* Split regex, ByteLevel use_regex (GPT-2 regex) */
    pcre2_match_data *md;       /* unused at encode time (per call match data) */
    int behavior, invert;       /* Split */
    int add_prefix_space;       /* ByteLevel */
    int prepend_scheme, split;  /* Metaspace */
    int start, stop;            /* Strip */
    int spm_dummy_prefix, spm_remove_ws, spm_escape_ws; /* BN_NM_SPM */
} bn_tok_step;

typedef struct bn_added_token {
    char *text; size_t len;
    int32_t id;
    int special, lstrip, rstrip, single_word, normalized;
} bn_added_token;

struct bitnet_tokenizer {
    int n_vocab;                /* max id + 1 over model vocab and added tokens */
    char **text; uint32_t *tlen;/* [n_vocab] token text as in the file (NULL for holes) */
    char **key; uint32_t *klen; /* [n_vocab] model match key (NULL: not a model token / unmatchable) */
    uint8_t *dec;               /* [n_vocab] 1 if the token is a byte-fallback "<0xXX>" piece */
    bn_strmap keymap;           /* key -> id (model vocab only) */
    bn_mergemap merges;
    int byte_level;             /* keys are raw bytes (a ByteLevel pre-tokenizer is present) */
    int32_t byte_id[256];       /* byte-level: id of each single byte; else -1 */
    int byte_fallback;
    int32_t byte_tok[256];      /* "<0xXX>" ids, -1 if absent */
    int32_t unk_id;             /* -1 if none */
    int fuse_unk, ignore_merges;
    int spm;                    /* loaded from tokenizer.model (sentencepiece rules) */
    int meta_split;             /* no mergeable token has "X\u2581" (X != \u2581): words may be cut before such a \u2581 */
    bn_added_token *added; int n_added;
    int32_t *added_first[256];  /* per first byte: indices into added[], longest first, -1 terminated */
    bn_added_token **usym; int n_usym; /* spm user-defined symbols (atomic in the char split) */
    bn_mergemap utrie;          /* byte trie of the user symbols: (node, byte) -> child node (in id) */
    int32_t *uterm;             /* [trie nodes] token id of the symbol ending at the node, -1 if none */
    uint32_t *tslot, tmask;     /* exact text -> token: v-1 < n_added: added[v-1], else id v-1-n_added */
    bn_tok_step *norm; int n_norm;
    bn_tok_step *pre; int n_pre;
    bn_tok_step *decs; int n_decs; int has_decoder;
    int bos, eos, eot;
    int32_t *eog; int n_eog;
    uint8_t *eog_map;           /* [n_vocab] 1 if the id is in eog (allocated by the first add) */
    const char *notice;         /* bitnet_tokenizer_notice (static text), NULL if none */
    char *arena_blocks;         /* linked list of arena blocks (first word = next) */
    char *arena_cur; size_t arena_left;
};

/* Arena copy of n bytes (+NUL); NULL on OOM. */
char *bn_tok_strdup(bitnet_tokenizer *t, const char *s, size_t n);
bitnet_status bn_tok_alloc_vocab(bitnet_tokenizer *t, int n_vocab);
/* Build keymap from key/klen; duplicates -> FORMAT error naming path. */
bitnet_status bn_tok_build_keymap(bitnet_tokenizer *t, const char *path);
int32_t bn_tok_key_lookup(const bitnet_tokenizer *t, const char *s, size_t n);
bitnet_status bn_mergemap_init(bn_mergemap *m, size_t n);
/* Insert (a,b); keeps the first (lowest rank) entry when a pair repeats. */
void bn_mergemap_put(bn_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
int bn_mergemap_get(const bn_mergemap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id);
/* Byte-level (GPT-2 bytes_to_unicode) conversion of UTF-8 text to raw bytes; returns length, or -1
 * if a character is outside the 256-character alphabet. out must hold n bytes. */
long bn_bytelevel_to_bytes(const char *s, size_t n, char *out);
/* Fill byte_tok / byte_id / added_first / eog after the vocab is complete. */
bitnet_status bn_tok_finish(bitnet_tokenizer *t, const char *path);
/* Compile a regex for the Split pre-tokenizer (UTF + UCP + invalid-UTF tolerant, JIT if possible). */
bitnet_status bn_tok_compile_regex(const char *pat, size_t len, pcre2_code **out, const char *path);

bitnet_status bn_tok_load_json(bitnet_tokenizer *t, const char *path);
bitnet_status bn_tok_load_spm(bitnet_tokenizer *t, const char *path);
/* The same from a tokenizer.model's bytes buf[len] in memory (path names it in messages). */
bitnet_status bn_tok_parse_spm(bitnet_tokenizer *t, const char *buf, size_t len, const char *path);
/* tokenizer.ggml.* metadata of a GGUF file (gguf_tokenizer.c). */
bitnet_status bn_tok_load_gguf(bitnet_tokenizer *t, const char *path);

/* A SentencePiece ModelProto as parsed (tokenizer_spm.c): pieces point into the caller's buffer. */
typedef struct { const char *s; uint32_t n; float score; int type; } bn_sp_piece;
typedef struct bn_sp_model {
    bn_sp_piece *pc; size_t np, cp;
    int model_type, byte_fallback, ws_suffix;
    int64_t unk_id, bos_id, eos_id;
    int dummy, rmws, escws;  /* normalizer: add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces */
    size_t charsmap;         /* bytes of precompiled_charsmap */
    char nname[64];
} bn_sp_model;
/* Parse a tokenizer.model's bytes buf[len] (must outlive m) with the loader's checks (BPE only,
 * identity normalizer, pieces typed 1..6, non-empty, no NaN score); m->pc is the caller's to
 * free on success. Errors name path. */
bitnet_status bn_tok_spm_read(const char *buf, size_t len, const char *path, bn_sp_model *m);
/* The SentencePiece ModelProto that tokenizer.ggml.model "llama" metadata of g describes
 * (tokens, scores, token_type, unk/bos/eos ids, add_space_prefix), in *buf (malloc'd, *n bytes);
 * what bn_tok_load_gguf reads and what GGUF -> HF conversion writes as tokenizer.model. */
typedef struct bn_gguf bn_gguf;
bitnet_status bn_tok_gguf_spm_proto(const bn_gguf *g, const char *path, uint8_t **buf, size_t *n);
#endif
