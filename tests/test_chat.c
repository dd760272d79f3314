/* test_chat.c — chat templates: detection from tokenizer_config.json (the golden folders, the
 * bundled model, hand-made configs) and bitnet_chat_apply's exact strings for the three formats.
 * The bitnet and llama3 references were rendered by Jinja2 as Hugging Face does
 * (tests/tools/render_chat_templates.py); the plain one and the one-turn strings are what
 * `bitnet chat` sent before the templates moved into the library. */
#include "t.h"
#include "bitnet.h"
#include <unistd.h>

static const bitnet_chat_message MSGS[4] = {
    {"system", "You are a helpful assistant."},
    {"user", " Hi there!\n"},
    {"assistant", "Hello. How can I help?"},
    {"user", "Tell me a story  "},
};

static int applies(bitnet_chat_template t, const bitnet_chat_message *m, int n, int add, const char *want) {
    char *got = NULL;
    bitnet_status s = bitnet_chat_apply(t, m, n, add, &got);
    int ok = s == BITNET_OK && got && !strcmp(got, want);
    if (!ok) printf("# template %s add %d:\n#  got  '%s'\n#  want '%s'\n", bitnet_chat_template_name(t), add, got ? got : "(null)", want);
    free(got);
    return ok;
}

static bitnet_chat_template detect_text(const char *dir, const char *json, bitnet_status *st) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(path, "wb");
    fputs(json, f);
    fclose(f);
    bitnet_chat_template t = (bitnet_chat_template)-1;
    *st = bitnet_chat_template_detect(path, &t);
    return t;
}

int main(void) {
    /* the full conversation, HF-rendered references */
    CHECK("bitnet template, generation prompt (HF reference)", applies(BITNET_CHAT_BITNET, MSGS, 4, 1,
          "System: You are a helpful assistant.<|eot_id|>User:  Hi there!\n<|eot_id|>Assistant: Hello. How can I help?<|eot_id|>User: Tell me a story  <|eot_id|>Assistant: "), "");
    CHECK("bitnet template, no generation prompt (HF reference)", applies(BITNET_CHAT_BITNET, MSGS, 4, 0,
          "System: You are a helpful assistant.<|eot_id|>User:  Hi there!\n<|eot_id|>Assistant: Hello. How can I help?<|eot_id|>User: Tell me a story  <|eot_id|>"), "");
    CHECK("llama3 template, generation prompt (HF reference)", applies(BITNET_CHAT_LLAMA3, MSGS, 4, 1,
          "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello. How can I help?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a story<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), "");
    CHECK("llama3 template, no generation prompt (HF reference)", applies(BITNET_CHAT_LLAMA3, MSGS, 4, 0,
          "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello. How can I help?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a story<|eot_id|>"), "");
    CHECK("plain template", applies(BITNET_CHAT_PLAIN, MSGS, 4, 1,
          "System: You are a helpful assistant.\nUser:  Hi there!\n\nAssistant: Hello. How can I help?\nUser: Tell me a story  \nAssistant:"), "");
    /* one turn at a time, as `bitnet chat` builds them (system + first user turn, then a user turn) */
    bitnet_chat_message su[2] = {{"system", "Be brief."}, {"user", "Hello"}};
    CHECK("bitnet: system + user turn", applies(BITNET_CHAT_BITNET, su, 2, 1, "System: Be brief.<|eot_id|>User: Hello<|eot_id|>Assistant: "), "");
    CHECK("bitnet: user turn", applies(BITNET_CHAT_BITNET, su + 1, 1, 1, "User: Hello<|eot_id|>Assistant: "), "");
    CHECK("llama3: system + user turn", applies(BITNET_CHAT_LLAMA3, su, 2, 1,
          "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), "");
    CHECK("plain: system + user turn", applies(BITNET_CHAT_PLAIN, su, 2, 1, "System: Be brief.\nUser: Hello\nAssistant:"), "");
    CHECK("bitnet: system alone, no generation prompt", applies(BITNET_CHAT_BITNET, su, 1, 0, "System: Be brief.<|eot_id|>"), "");
    CHECK("no messages: the generation prompt alone", applies(BITNET_CHAT_BITNET, NULL, 0, 1, "Assistant: "), "");
    bitnet_chat_message odd[1] = {{"tOOL", "x"}};
    CHECK("role capitalized as Jinja's capitalize", applies(BITNET_CHAT_BITNET, odd, 1, 0, "Tool: x<|eot_id|>"), "");
    char *o = NULL;
    bitnet_chat_message bad[2] = {{NULL, "x"}, {"user", NULL}};
    CHECK("NULL role, NULL content, unknown template rejected",
          bitnet_chat_apply(BITNET_CHAT_BITNET, bad, 1, 1, &o) == BITNET_ERR_ARG && !o &&
          bitnet_chat_apply(BITNET_CHAT_BITNET, bad + 1, 1, 1, &o) == BITNET_ERR_ARG &&
          bitnet_chat_apply((bitnet_chat_template)7, su, 1, 1, &o) == BITNET_ERR_ARG, "");

    /* names */
    bitnet_chat_template t = BITNET_CHAT_PLAIN;
    int names_ok = 1;
    for (int i = 0; i < 3; i++) names_ok &= bitnet_chat_template_from_name(bitnet_chat_template_name((bitnet_chat_template)i), &t) == BITNET_OK && (int)t == i;
    CHECK("template names round-trip; unknown name rejected", names_ok && bitnet_chat_template_from_name("chatml", &t) == BITNET_ERR_ARG &&
          strstr(bitnet_last_error(), "chatml"), "");

    /* detection from the golden folders and the bundled model */
    const char *bitnet_dirs[] = {"tests/golden/bitnet-b158-packed", "tests/golden/bitnet-b158-master", "tests/golden/tokenizer-bpe",
                                 "models/bitnet-tinystories"};
    for (int i = 0; i < 4; i++) {
        bitnet_status s = bitnet_chat_template_detect(bitnet_dirs[i], &t);
        char name[160]; snprintf(name, sizeof name, "detect %s: bitnet", bitnet_dirs[i]);
        CHECK(name, s == BITNET_OK && t == BITNET_CHAT_BITNET, "status %d template %d %s", s, t, bitnet_last_error());
    }
    const char *plain_dirs[] = {"tests/golden/bitnet-1bitllm", "tests/golden/tokenizer-spm"};
    for (int i = 0; i < 2; i++) {
        bitnet_status s = bitnet_chat_template_detect(plain_dirs[i], &t);
        char name[160]; snprintf(name, sizeof name, "detect %s (no chat_template): plain", plain_dirs[i]);
        CHECK(name, s == BITNET_OK && t == BITNET_CHAT_PLAIN, "status %d template %d", s, t);
    }
    CHECK("detect a tokenizer_config.json path", bitnet_chat_template_detect("tests/golden/bitnet-b158-packed/tokenizer_config.json", &t) == BITNET_OK &&
          t == BITNET_CHAT_BITNET, "");

    char dir[] = "/tmp/bitnet_test_chat_XXXXXX";
    if (!mkdtemp(dir)) { CHECK("mkdtemp", 0, "cannot make a temp dir"); T_DONE(); }
    bitnet_status s;
    CHECK("folder without tokenizer_config.json: plain", bitnet_chat_template_detect(dir, &t) == BITNET_OK && t == BITNET_CHAT_PLAIN, "");
    /* The real 2B-4T tokenizer_config.json lists <|start_header_id|> among its added tokens: the
     * template decides, not other text in the file (the old detector said llama3 here). */
    t = detect_text(dir, "{\"added_tokens_decoder\": {\"128006\": {\"content\": \"<|start_header_id|>\", \"special\": true}},"
                         " \"chat_template\": \"{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{{ message['role'] | capitalize }}: "
                         "{{ message['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}\"}", &s);
    CHECK("2B-4T config listing header tokens: bitnet", s == BITNET_OK && t == BITNET_CHAT_BITNET, "status %d template %d", s, t);
    t = detect_text(dir, "{\"chat_template\": \"{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
                         "message['content'] | trim + '<|eot_id|>' }}{% endfor %}\"}", &s);
    CHECK("Llama 3 template: llama3", s == BITNET_OK && t == BITNET_CHAT_LLAMA3, "status %d template %d", s, t);
    t = detect_text(dir, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", \"template\": "
                         "\"<|start_header_id|>{{ m }}\"}]}", &s);
    CHECK("named templates: the default one", s == BITNET_OK && t == BITNET_CHAT_LLAMA3, "status %d template %d", s, t);
    t = detect_text(dir, "{\"chat_template\": \"{% for m in messages %}<|im_start|>{{ m['role'] }}\\n{{ m['content'] }}<|im_end|>{% endfor %}\"}", &s);
    CHECK("unknown template (chatml): plain", s == BITNET_OK && t == BITNET_CHAT_PLAIN, "status %d template %d", s, t);
    t = detect_text(dir, "{\"chat_template\": ", &s);
    CHECK("invalid JSON: format error naming the file", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "tokenizer_config.json"),
          "status %d: %s", s, bitnet_last_error());
    char path[512]; snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    unlink(path); rmdir(dir);
    T_DONE();
}
