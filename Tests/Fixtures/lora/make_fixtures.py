"""Writes the LoRA fixtures: PEFT adapters for two conformance models and, for each case, what mergekit 0.1.5
writes for it (its `ModelReference.merged`: transformers loads the base, PEFT's `merge_and_unload` applies the
adapter). Run once with mergekit's virtualenv (torch, peft, transformers, mergekit); the tests never run it:

    ATEN_CPU_CAPABILITY=avx2 /path/to/mergekit-venv/bin/python make_fixtures.py /path/to/mergekit-venv/bin
"""
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "conformance", "models")


def adapter(base, name, config, seed):
    """Saves a PEFT adapter of `config` on `base` with random (not initial) weights into adapters/NAME."""
    model = AutoModelForCausalLM.from_pretrained(os.path.join(MODELS, base), dtype=torch.float32)
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param_name, param in peft_model.named_parameters():
            if "lora_" in param_name or "modules_to_save" in param_name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05
                            + (1.0 if "modules_to_save" in param_name and "weight" in param_name else 0.0))
    out = os.path.join(HERE, "adapters", name)
    shutil.rmtree(out, ignore_errors=True)
    peft_model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))
    config_path = os.path.join(out, "adapter_config.json")
    text = open(config_path).read().replace(os.path.join(MODELS, base), f"../conformance/models/{base}")
    open(config_path, "w").write(text)


def case(name, extra_args):
    """Runs mergekit-yaml on cases/NAME/config.yml into cases/NAME/expected (from this folder)."""
    directory = os.path.join(HERE, "cases", name)
    expected = os.path.join(directory, "expected")
    shutil.rmtree(expected, ignore_errors=True)
    with tempfile.TemporaryDirectory() as cache:
        subprocess.run([os.path.join(sys.argv[1], "mergekit-yaml"), os.path.join(directory, "config.yml"), expected,
                        "--no-write-model-card", "--lora-merge-cache", cache] + extra_args, cwd=HERE, check=True)
    for extra in os.listdir(expected):
        if extra not in ("model.safetensors", "config.json"):
            os.remove(os.path.join(expected, extra))


adapter("llama-ft-a-bf16", "llama-ranks", LoraConfig(
    r=8, lora_alpha=16, target_modules=r"model\.embed_tokens|.*\.[02]\.self_attn\.[qkv]_proj",
    rank_pattern={"q_proj": 193, "k_proj": 400}, alpha_pattern={"v_proj": 3}), seed=1)
adapter("gpt2-a", "gpt2-conv1d", LoraConfig(
    r=6, lora_alpha=5, use_rslora=True, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True, lora_bias=True,
    modules_to_save=["ln_f"]), seed=2)
case("lora_ranks_bf16", [])
case("lora_conv1d_fp16", ["--lora-merge-dtype", "float16"])
