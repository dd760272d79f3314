#!/usr/bin/env python3
"""Writes a model folder with the exact shapes and file layout of microsoft/bitnet-b1.58-2B-4T
(packed uint8 ternary weights + bf16 weight_scale, bf16 norms and tied embeddings) but random
values, so the loader and `bitnet info` can be measured at full size without the real
checkpoint. Usage: make_2b4t_shaped.py OUT_DIR   (needs numpy; about 1.2 GB on disk)."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_random_bitnet import write_bitnet

out = sys.argv[1]
cfg = {"architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "vocab_size": 128256,
       "hidden_size": 2560, "intermediate_size": 6912, "num_hidden_layers": 30,
       "num_attention_heads": 20, "num_key_value_heads": 5, "max_position_embeddings": 4096,
       "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "hidden_act": "relu2",
       "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": 128001,
       "torch_dtype": "bfloat16",
       "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear",
                               "quantization_mode": "offline"}}
nbytes, _ = write_bitnet(out, cfg)
print(out, nbytes, "bytes")
