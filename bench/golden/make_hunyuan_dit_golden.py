#!/usr/bin/env python3
"""Golden vectors for the TorchSharp HunyuanDiT2DModel, produced by diffusers' own modules.

Runs diffusers' HunyuanDiT2DModel (hunyuan_transformer_2d.py with the embeddings, attention, attention processor,
activation and normalization modules it uses) on a small random config, and writes for each variant (v1.2: no style /
image-meta-size condition; v1.1: with them) a diffusers component folder plus the inputs and outputs:

    <out>/<variant>/config.json
    <out>/<variant>/diffusion_pytorch_model.safetensors   (the random weights, fp32)
    <out>/<variant>/io.safetensors                        (inputs, RoPE tables from get_2d_rotary_pos_embed, output)

diffusers itself is not installed: pass the path of a diffusers checkout's `src/diffusers`. Only the six model files are
copied into a scratch package; the rest of the package they import (config mixin, logging, import checks) is replaced by
the small stand-ins below, and PyTorch < 2.0 (Debian's python3-torch 1.13) gets a plain softmax attention as
F.scaled_dot_product_attention. Safetensors are written by hand (8-byte little-endian header length, JSON, raw data).

    apt-get install -y python3-torch python3-numpy libopenblas0-pthread
    /usr/bin/python3 bench/golden/make_hunyuan_dit_golden.py --diffusers /path/to/diffusers/src/diffusers \
        --out tests/BatchRender.Model.Tests/Golden
"""
import argparse
import inspect
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import types

import torch
import torch.nn.functional as F

MODEL_FILES = [
    "models/transformers/hunyuan_transformer_2d.py",
    "models/embeddings.py",
    "models/attention_processor.py",
    "models/attention.py",
    "models/activations.py",
    "models/normalization.py",
    "models/modeling_outputs.py",
]

# ---- stand-ins for the parts of the diffusers package the model files import --------------------------------------

UTILS = '''
import logging as _logging
import operator as _op
import torch as _torch

class _Logging:
    @staticmethod
    def get_logger(name):
        return _logging.getLogger(name)
logging = _Logging()

def deprecate(*args, **kwargs):
    return None

def _version_tuple(v):
    return tuple(int("".join(c for c in part if c.isdigit()) or 0) for part in v.split("+")[0].split(".")[:3])

def is_torch_version(operation, v):
    ops = {">": _op.gt, ">=": _op.ge, "<": _op.lt, "<=": _op.le, "==": _op.eq, "!=": _op.ne}
    return ops[operation](_version_tuple(_torch.__version__), _version_tuple(v))

def _false(*args, **kwargs):
    return False
is_torch_npu_available = is_torch_xla_available = is_xformers_available = is_torch_xla_version = _false

class BaseOutput:
    pass
'''

TORCH_UTILS = '''
from . import is_torch_version

def maybe_allow_in_graph(cls):
    return cls

def maybe_adjust_dtype_for_device(dtype, device):
    return dtype

def lru_cache_unless_export(*args, **kwargs):
    import functools
    return functools.lru_cache(*args, **kwargs)
'''

CONFIGURATION_UTILS = '''
import functools
import inspect
import types

class ConfigMixin:
    pass

def register_to_config(init):
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = inspect.signature(init).bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = {k: v for k, v in bound.arguments.items() if k != "self"}
        object.__setattr__(self, "config", types.SimpleNamespace(**values))   # the model reads self.config in __init__
        init(self, *args, **kwargs)
    return wrapper
'''

MODELING_UTILS = '''
from torch import nn

class ModelMixin(nn.Module):
    pass
'''


def plain_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(q k^T / sqrt(d)) v, for PyTorch builds without F.scaled_dot_product_attention."""
    assert not is_causal and dropout_p == 0.0
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    if attn_mask is not None:
        scores = scores + attn_mask if attn_mask.dtype != torch.bool else scores.masked_fill(~attn_mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), value)


def import_diffusers_model(diffusers_src):
    root = tempfile.mkdtemp(prefix="diffusers-ref-")
    package = os.path.join(root, "diffusers")
    for sub in ["", "utils", "models", "models/transformers"]:
        os.makedirs(os.path.join(package, sub), exist_ok=True)
        open(os.path.join(package, sub, "__init__.py"), "w").close()
    stand_ins = {
        "utils/__init__.py": UTILS,
        "utils/torch_utils.py": TORCH_UTILS,
        "utils/import_utils.py": "from . import (is_torch_npu_available, is_torch_xla_available, is_torch_xla_version,\n    is_xformers_available, is_torch_version)\n",
        "configuration_utils.py": CONFIGURATION_UTILS,
        "models/modeling_utils.py": MODELING_UTILS,
        "image_processor.py": "class IPAdapterMaskProcessor:\n    pass\n",
    }
    for name, text in stand_ins.items():
        with open(os.path.join(package, name), "w") as f:
            f.write(text)
    for name in MODEL_FILES:
        shutil.copy(os.path.join(diffusers_src, name), os.path.join(package, name))
    if not hasattr(F, "scaled_dot_product_attention"):
        F.scaled_dot_product_attention = plain_sdpa
    sys.path.insert(0, root)
    from diffusers.models.transformers.hunyuan_transformer_2d import HunyuanDiT2DModel
    from diffusers.models.embeddings import get_2d_rotary_pos_embed
    from diffusers.models import embeddings
    return HunyuanDiT2DModel, get_2d_rotary_pos_embed, embeddings


# ---- safetensors, written by hand ------------------------------------------------------------------------------------

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def save_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


# ---- the cases --------------------------------------------------------------------------------------------------------

CONFIG = dict(
    num_attention_heads=2, attention_head_dim=32, in_channels=4, patch_size=2, activation_fn="gelu-approximate",
    sample_size=16, hidden_size=64, num_layers=6, mlp_ratio=4.3637, learn_sigma=True, cross_attention_dim=48,
    norm_type="layer_norm", cross_attention_dim_t5=64, pooled_projection_dim=40, text_len=6, text_len_t5=10,
)


def resize_crop_region_for_grid(src, tgt_size):
    """pipeline_hunyuandit.get_resize_crop_region_for_grid (a pipeline helper; restated here, 6 lines)."""
    th = tw = tgt_size
    h, w = src
    r = h / w
    if r > 1:
        resize_height, resize_width = th, int(round(th / h * w))
    else:
        resize_width, resize_height = tw, int(round(tw / w * h))
    top, left = int(round((th - resize_height) / 2.0)), int(round((tw - resize_width) / 2.0))
    return (top, left), (top + resize_height, left + resize_width)


def make_case(model_cls, get_2d_rotary_pos_embed, out_dir, variant, use_style, seed):
    torch.manual_seed(seed)
    config = dict(CONFIG, use_style_cond_and_image_meta_size=use_style)
    model = model_cls(**config).eval()
    # Default inits leave norms at 1/0 and biases small; randomise everything so every path is exercised, then round
    # to fp16 (the weights are stored as F16, which halves the files and exercises the loader's fp16 -> fp32 path).
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p.numel() // p.shape[0] if p.ndim > 1 else 1
            value = torch.randn_like(p) * (fan_in ** -0.5 if p.ndim > 1 else 0.1)
            if name.endswith("norm.weight") or name.endswith("norm_q.weight") or name.endswith("norm_k.weight"):
                value += 1.0
            p.copy_(value.half().float())

    batch, latent_h, latent_w = 2, 16, 12                   # image 128 x 96: grid 8 x 6, crop start (0, 4)
    x = torch.randn(batch, 4, latent_h, latent_w)
    t = torch.tensor([999.0, 37.0])
    bert = torch.randn(batch, CONFIG["text_len"], CONFIG["cross_attention_dim"])
    t5 = torch.randn(batch, CONFIG["text_len_t5"], CONFIG["cross_attention_dim_t5"])
    bert_mask = torch.zeros(batch, CONFIG["text_len"], dtype=torch.int64)
    t5_mask = torch.zeros(batch, CONFIG["text_len_t5"], dtype=torch.int64)
    bert_mask[0, :3] = 1
    bert_mask[1, :6] = 1
    t5_mask[0, :4] = 1
    t5_mask[1, :7] = 1
    grid_h, grid_w = latent_h // 2, latent_w // 2
    crops = resize_crop_region_for_grid((grid_h, grid_w), 512 // 8 // 2)
    cos, sin = get_2d_rotary_pos_embed(32, crops, (grid_h, grid_w), output_type="pt")
    meta = torch.tensor([[1024.0, 1024.0, 128.0, 96.0, 0.0, 0.0], [512.0, 768.0, 128.0, 96.0, 16.0, 32.0]])
    style = torch.tensor([0, 0])

    with torch.no_grad():
        out = model(x, t, encoder_hidden_states=bert, text_embedding_mask=bert_mask, encoder_hidden_states_t5=t5,
                    text_embedding_mask_t5=t5_mask, image_meta_size=meta if use_style else None,
                    style=style if use_style else None, image_rotary_emb=(cos, sin), return_dict=False)[0]

    folder = os.path.join(out_dir, variant)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(dict({"_class_name": "HunyuanDiT2DModel"}, **config), f, indent=2)
        f.write("\n")
    save_safetensors(os.path.join(folder, "diffusion_pytorch_model.safetensors"),
                     {k: v.half() for k, v in model.state_dict().items()})
    io = dict(x=x, timestep=t, bert=bert, bert_mask=bert_mask, t5=t5, t5_mask=t5_mask, rope_cos=cos, rope_sin=sin, output=out)
    if use_style:
        io.update(image_meta_size=meta, style=style)
    save_safetensors(os.path.join(folder, "io.safetensors"), io)
    print(f"{variant}: {len(model.state_dict())} tensors, "
          f"{sum(p.numel() for p in model.parameters())} parameters, output {tuple(out.shape)}, |out| max {out.abs().max():.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--diffusers", required=True, help="path of a diffusers checkout's src/diffusers")
    parser.add_argument("--out", required=True, help="output folder (tests/BatchRender.Model.Tests/Golden)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model_cls, rope, _ = import_diffusers_model(os.path.abspath(args.diffusers))
    make_case(model_cls, rope, args.out, "hunyuan-dit-v12-small", use_style=False, seed=1234)
    make_case(model_cls, rope, args.out, "hunyuan-dit-v11-small", use_style=True, seed=5678)


if __name__ == "__main__":
    main()
