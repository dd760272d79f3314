/* sft.h — chat supervised fine-tuning data: a JSONL file of {"messages": [{"role", "content"},
 * ...]} conversations rendered with a chat template (bitnet_chat_apply), tokenized, and packed
 * into one token stream with a loss mask that keeps only the assistant turns as targets.
 *
 * One conversation becomes, in order (a "segment" is encoded on its own, as `bitnet chat` encodes
 * a turn; the first one with BOS, the rest with BITNET_TOK_CONTINUE):
 *   BOS (if the tokenizer has one; masked)
 *   each non-assistant message rendered alone, with the assistant prefix ("Assistant: ", or the
 *     template's header) appended when an assistant message follows (masked);
 *   each assistant message: its rendering less the assistant prefix, i.e. the content and the
 *     template's end of turn (<|eot_id|>) (trained: mask 1);
 *   EOS when the conversation's last token is not already EOS (the packing separator; trained
 *     when the last message is the assistant's, so the model learns to stop).
 * Conversations are packed back to back; the trainer's windows then cut across them (attention
 * is not blocked between packed conversations). The mask marks tokens that are targets:
 * mask[i] = 1 means "predict token i" (data.h).
 * Not: a Jinja interpreter (the three templates of bitnet.h), a multi-turn loss weighting. */
#ifndef BITNET_SFT_H
#define BITNET_SFT_H
#include "core/util.h"

typedef struct bn_sft_stats { int64_t examples, tokens, trained; } bn_sft_stats;

/* Read path (JSONL: one JSON object per non-blank line, each with a "messages" array of
 * {"role": string, "content": string}); *ids, *mask are malloc'd [*n]. Errors name the file and
 * the line. st may be NULL. */
bitnet_status bn_sft_load_jsonl(const char *path, const bitnet_tokenizer *tok, bitnet_chat_template tmpl,
                                int32_t **ids, uint8_t **mask, size_t *n, bn_sft_stats *st);
#endif
