#!/usr/bin/env python3
"""Render the reference chat strings in tests/test_chat.c with Jinja2 the way Hugging Face's
apply_chat_template does (sandboxed env, trim_blocks, lstrip_blocks; bos_token rendered as "" since
bitnet_chat_apply leaves BOS to the tokenizer). Templates: the 2B-4T one from
tests/golden/bitnet-b158-packed/tokenizer_config.json and Meta's Llama 3 Instruct one.
Prints C string literals. Not run by the tests (needs jinja2): run by hand to regenerate."""
import json
from jinja2.sandbox import ImmutableSandboxedEnvironment

BITNET = json.load(open("tests/golden/bitnet-b158-packed/tokenizer_config.json"))["chat_template"]
LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
          "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
          "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
          "{{ content }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
MSGS = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": " Hi there!\n"},
        {"role": "assistant", "content": "Hello. How can I help?"},
        {"role": "user", "content": "Tell me a story  "}]

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
for name, t in (("bitnet", BITNET), ("llama3", LLAMA3)):
    for gen in (1, 0):
        out = env.from_string(t).render(messages=MSGS, add_generation_prompt=bool(gen), bos_token="")
        print(f"/* {name} add_assistant={gen} */ {json.dumps(out)}")
