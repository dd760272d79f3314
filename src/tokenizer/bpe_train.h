/* bpe_train.h — trains a byte-level BPE tokenizer (Llama 3 pre-tokenizer regex + ByteLevel)
 * and writes it as a Hugging Face tokenizer.json that our tokenizer and HF `tokenizers` load.
 * Not: a SentencePiece/Unigram trainer. */
#ifndef BITNET_BPE_TRAIN_H
#define BITNET_BPE_TRAIN_H
#include "core/util.h"

typedef struct bn_bpe_train_params {
    int vocab_size;           /* total, including the 256 byte tokens and the special tokens */
    const char **specials;    /* special tokens appended after the vocabulary (e.g. <|eot_id|>) */
    int n_specials;
    const char *bos;          /* special added at the start by the post-processor, or NULL */
    int min_frequency;        /* stop when the best pair occurs fewer times (default 2) */
    /* progress callback (may be NULL): phase 0 = counting words (done/total bytes),
     * phase 1 = merging (done/total merges) */
    void (*progress)(void *ud, int phase, double done, double total);
    void *ud;
} bn_bpe_train_params;

/* Train on texts[n] (lens[n] bytes each; any bytes) and write tokenizer.json to out_path
 * atomically. *n_merges_out gets the number of merges learned. */
bitnet_status bn_bpe_train(const char *const *texts, const size_t *lens, int n,
                           const bn_bpe_train_params *p, const char *out_path, int *n_merges_out);
#endif
