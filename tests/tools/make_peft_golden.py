#!/usr/bin/env python3
"""make_peft_golden.py — the PEFT LoRA golden for tests/test_peft_golden.c (optional: needs
torch, transformers and peft from PyPI, CPU: `pip install torch transformers peft safetensors`).

What it makes, in OUTDIR (default tests/peft-golden), from the golden master model
tests/golden/bitnet-b158-master (transformers' BitNetForCausalLM, online BitNet quantization,
float32) and its training batch golden_train_tokens.u32 (inputs tokens[:-1], targets tokens[1:],
viewed as [2, 32]):
  adapter_config.json, adapter_model.safetensors  the adapter at step 0 as PEFT saves it:
      LoRA r 4, alpha 8, on all seven BitLinear projections, no dropout, init_lora_weights=False
      (A and B both random from torch.manual_seed(0), so every gradient is non-zero)
  grads_step0.safetensors  float32 d loss / d (every lora_A / lora_B) at step 0, PEFT's file names
  grads_step0_int8_input.safetensors  the same with lora_A fed the int8-quantized BitLinear input
      (straight-through), the convention bitnet.c's adapters used before they read the float
      input as PEFT does (src/train/lora.h): the test's proof that its bound tells them apart
  golden_peft.json         the loss at each of 8 steps of torch.optim.AdamW on the adapters only
      (lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0, no clipping) on that same batch, and
      the versions used.
Deterministic: same inputs, same outputs (up to float rounding of another torch build).
Not: part of the test suite (the committed outputs are; the C test never runs Python)."""
import json, os, sys

import numpy as np
import torch
import peft
import transformers
from safetensors.torch import save_file
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
base = os.path.join(root, "tests", "golden", "bitnet-b158-master")
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "peft-golden")
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
torch.use_deterministic_algorithms(True)

model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets, bias="none",
                 task_type="CAUSAL_LM", init_lora_weights=False)
model = get_peft_model(model, cfg)
model.save_pretrained(out)   # adapter_config.json + adapter_model.safetensors at step 0
for junk in ("README.md",):   # the model card PEFT writes along
    if os.path.exists(os.path.join(out, junk)):
        os.remove(os.path.join(out, junk))
acfg_path = os.path.join(out, "adapter_config.json")
acfg = json.load(open(acfg_path))
acfg["base_model_name_or_path"] = "tests/golden/bitnet-b158-master"   # not this machine's path
json.dump(acfg, open(acfg_path, "w"), indent=2, sort_keys=True)

toks = np.fromfile(os.path.join(base, "golden_train_tokens.u32"), dtype="<u4").astype(np.int64)
B, T = 2, 32
x = torch.tensor(toks[:-1]).view(B, T)
y = torch.tensor(toks[1:]).view(B, T)
V = model.config.vocab_size


def loss_fn():
    logits = model(input_ids=x).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))


params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
assert params and all("lora_" in n for n, _ in params), [n for n, _ in params][:4]
opt = torch.optim.AdamW([p for _, p in params], lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
losses = []
for step in range(8):
    opt.zero_grad()
    loss = loss_fn()
    loss.backward()
    if step == 0:
        grads = {n.replace(".default", ""): p.grad.detach().clone().contiguous() for n, p in params}
        save_file(grads, os.path.join(out, "grads_step0.safetensors"))
    losses.append(float(loss))
    opt.step()

# The same step-0 gradients with lora_A fed the BitLinear's int8-quantized input (per-token absmax,
# straight-through), bitnet.c's former convention: a control that test_peft_golden's bound must
# reject (it differs from plain PEFT by 4-9% rel L2).
import peft.tuners.lora.layer as lora_layer
from peft import PeftModel
qm = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32), out, is_trainable=True)
for _, mod in qm.named_modules():
    if isinstance(mod, lora_layer.Linear):
        a = mod.lora_A["default"]

        def quant_in(x, f=a.forward):
            s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
            return f(x + ((x * s).round().clamp(-128, 127) / s - x).detach())
        a.forward = quant_in
model = qm
loss_fn().backward()
save_file({n.replace(".default", ""): p.grad.detach().clone().contiguous() for n, p in qm.named_parameters() if p.requires_grad},
          os.path.join(out, "grads_step0_int8_input.safetensors"))

json.dump({
    "base": "tests/golden/bitnet-b158-master",
    "tokens": "tests/golden/bitnet-b158-master/golden_train_tokens.u32 (inputs tokens[:-1], targets tokens[1:], [2, 32])",
    "lora": {"r": 4, "lora_alpha": 8, "target_modules": targets, "init_lora_weights": False, "seed": 0},
    "optimizer": {"name": "AdamW", "lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.0,
                  "note": "torch.optim.AdamW on the adapters only, constant lr, no clipping, same batch each step"},
    "losses": losses,
    "note": "PEFT feeds lora_A the BitLinear's float input (the norm output before the activation "
            "quantizer), as bitnet.c does (src/train/lora.h)",
    "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
}, open(os.path.join(out, "golden_peft.json"), "w"), indent=1)
for f in os.listdir(out):
    os.chmod(os.path.join(out, f), 0o644)
print("wrote", out, "losses", losses)
