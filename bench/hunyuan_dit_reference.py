#!/usr/bin/env python3
"""PyTorch anchor for BatchRender's TorchSharp Hunyuan-DiT: the HunyuanDiT2DModel transformer forward in plain
PyTorch (written from diffusers' hunyuan_transformer_2d.py and the modules it uses; ../docs: shared HUNYUAN.md s2),
loading a diffusers-layout safetensors file, timed in eager fp32 and with torch.ao.quantization.quantize_dynamic.

Runs on Debian's python3-torch 1.13 (no SDPA there: attention is written out; no safetensors package: the format is
read directly). Prints one JSON object on stdout; the outputs (and the inputs used) go to a safetensors file.

usage: hunyuan_dit_reference.py WEIGHTS CONFIG BATCH HEIGHT WIDTH REPEATS THREADS OUTPUT [--inputs FILE] [--engine E] [--seed N]
  WEIGHTS  transformer safetensors (diffusers key names)    CONFIG  transformer config.json
  HEIGHT/WIDTH in pixels (latent = /8)                         OUTPUT  safetensors written with the outputs
  --inputs  safetensors with the forward inputs (hidden_states, timestep, encoder_hidden_states, text_embedding_mask,
            encoder_hidden_states_t5, text_embedding_mask_t5[, image_meta_size, style]); random (seeded) when absent
  --engine  onednn | qnnpack | best (default: measure both, use the faster)
"""
import argparse
import json
import math
import os
import struct
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights"); p.add_argument("config")
    p.add_argument("batch", type=int); p.add_argument("height", type=int); p.add_argument("width", type=int)
    p.add_argument("repeats", type=int); p.add_argument("threads", type=int); p.add_argument("output")
    p.add_argument("--inputs"); p.add_argument("--engine", default="best", choices=["best", "onednn", "qnnpack"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vae-scale-factor", type=int, default=8, help="pixels per latent (RoPE base size is 512 px)")
    p.add_argument("--skip-int8", action="store_true", help="fp32 only (golden vectors)")
    return p.parse_args()


ARGS = parse_args()
# BLAS/OpenMP pools are sized when torch loads: pin them to the thread count we compare against.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ----------------------------------------------------------------------------------------------- safetensors I/O

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
           "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def load_safetensors(path):
    """8-byte little-endian header length, JSON header {name: {dtype, shape, data_offsets}}, raw little-endian data."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif info["dtype"] in _DTYPES:
            arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {info['dtype']}")
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


def save_safetensors(path, tensors):
    names = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.bool: "BOOL"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw); offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)

# ---------------------------------------------------------------------------------------------- model (diffusers)


def timestep_embedding(t, dim=256, max_period=10000):
    """diffusers get_timestep_embedding with flip_sin_to_cos=True, downscale_freq_shift=0: [cos, sin]."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half
    args = t[:, None].float() * torch.exp(exponent)[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def phase_sinusoid(frame_phase, batch):
    """BatchRender's frame phase in [0, 1] (zeros when absent), stretched to the timestep range: [B, 256]."""
    phase = frame_phase if frame_phase is not None else torch.zeros(batch)
    return timestep_embedding(phase * 1000.0)


class FP32LayerNorm(nn.LayerNorm):
    def forward(self, x):
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


class TextProjection(nn.Module):
    """PixArtAlphaTextProjection with act 'silu_fp32'."""
    def __init__(self, in_features, hidden, out_features):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, hidden)
        self.linear_2 = nn.Linear(hidden, out_features)

    def forward(self, x):
        h = self.linear_1(x)
        return self.linear_2(F.silu(h.float()).to(h.dtype))


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels, dim):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class AttentionPool(nn.Module):
    """HunyuanDiTAttentionPool: one query (the mean token) attends over [mean; tokens] + positional embedding."""
    def __init__(self, seq_len, embed_dim, num_heads, output_dim):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(seq_len + 1, embed_dim) / embed_dim ** 0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.num_heads = num_heads

    def forward(self, x):                          # x [B, L, C] (raw T5 states, no mask: padding takes part)
        x = x.permute(1, 0, 2)                     # [L, B, C]
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        x, _ = F.multi_head_attention_forward(
            query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=self.num_heads,
            q_proj_weight=self.q_proj.weight, k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight,
            in_proj_weight=None, in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=self.c_proj.weight, out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True, training=False, need_weights=False)
        return x.squeeze(0)                        # [B, output_dim]


class CombinedEmbedding(nn.Module):
    """HunyuanCombinedTimestepTextSizeStyleEmbedding."""
    def __init__(self, dim, pooled_dim, seq_len, t5_dim, use_style_and_size, frame_phase=False):
        super().__init__()
        self.timestep_embedder = TimestepEmbedding(256, dim)
        self.pooler = AttentionPool(seq_len, t5_dim, num_heads=8, output_dim=pooled_dim)
        self.use_style_and_size = use_style_and_size
        if use_style_and_size:
            self.style_embedder = nn.Embedding(1, dim)
            extra_in = 256 * 6 + dim + pooled_dim
        else:
            extra_in = pooled_dim
        self.extra_embedder = TextProjection(extra_in, dim * 4, dim)
        # BatchRender's extension (config frame_phase_embedding): + embedder(sinusoid(phase * 1000)), phase 0 by default.
        self.frame_phase_embedder = TimestepEmbedding(256, dim) if frame_phase else None

    def forward(self, timestep, pooled, image_meta_size, style, dtype, frame_phase=None):
        """pooled: self.pooler(t5_states), [B, P] (the model pools once; its frame-phase token may read it too)."""
        temb = self.timestep_embedder(timestep_embedding(timestep).to(dtype))
        if self.use_style_and_size:
            size = timestep_embedding(image_meta_size.reshape(-1)).to(dtype).reshape(-1, 6 * 256)
            extra = torch.cat([pooled, size, self.style_embedder(style)], dim=1)
        else:
            extra = pooled
        conditioning = temb + self.extra_embedder(extra)
        if self.frame_phase_embedder is not None:
            conditioning = conditioning + self.frame_phase_embedder(phase_sinusoid(frame_phase, timestep.shape[0]).to(dtype))
        return conditioning


def apply_rotary_emb(x, cos, sin):
    """Pairs (2k, 2k+1) rotated; computed in fp32 (diffusers apply_rotary_emb, use_real, unbind_dim=-1)."""
    real, imag = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
    rotated = torch.stack([-imag, real], dim=-1).flatten(3)
    return (x.float() * cos[None, None] + rotated.float() * sin[None, None]).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, dim, heads, cross_dim=None):
        super().__init__()
        self.heads, self.is_cross = heads, cross_dim is not None
        kv_dim = cross_dim if cross_dim is not None else dim
        head_dim = dim // heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(kv_dim, dim)
        self.to_v = nn.Linear(kv_dim, dim)
        self.norm_q = nn.LayerNorm(head_dim, eps=1e-6)
        self.norm_k = nn.LayerNorm(head_dim, eps=1e-6)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])

    def forward(self, x, context=None, rope=None):
        b = x.shape[0]
        context = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        q, k, v = (t.view(b, -1, self.heads, t.shape[-1] // self.heads).transpose(1, 2) for t in (q, k, v))
        q, k = self.norm_q(q), self.norm_k(k)
        if rope is not None:
            q = apply_rotary_emb(q, *rope)
            if not self.is_cross:
                k = apply_rotary_emb(k, *rope)
        # scaled_dot_product_attention (absent in torch 1.13), no mask, scale 1/sqrt(head_dim)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        out = torch.matmul(scores.softmax(dim=-1), v)
        out = out.transpose(1, 2).reshape(b, -1, q.shape[1] * q.shape[-1])
        return self.to_out[1](self.to_out[0](out))


class GELUProj(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner)

    def forward(self, x):
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.net = nn.ModuleList([GELUProj(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class AdaLayerNormShift(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.norm = FP32LayerNorm(dim, eps=1e-6)

    def forward(self, x, emb):
        shift = self.linear(F.silu(emb.float()).to(emb.dtype))
        return self.norm(x) + shift.unsqueeze(1)


class Block(nn.Module):
    def __init__(self, dim, heads, ff_inner, cross_dim, skip):
        super().__init__()
        self.norm1 = AdaLayerNormShift(dim)
        self.attn1 = Attention(dim, heads)
        self.norm2 = FP32LayerNorm(dim, eps=1e-6)
        self.attn2 = Attention(dim, heads, cross_dim=cross_dim)
        self.norm3 = FP32LayerNorm(dim, eps=1e-6)
        self.ff = FeedForward(dim, ff_inner)
        if skip:
            self.skip_norm = FP32LayerNorm(2 * dim, eps=1e-6)
            self.skip_linear = nn.Linear(2 * dim, dim)
        else:
            self.skip_linear = None

    def forward(self, x, temb, context, rope, skip=None):
        if self.skip_linear is not None:
            x = self.skip_linear(self.skip_norm(torch.cat([x, skip], dim=-1)))
        x = x + self.attn1(self.norm1(x, temb), rope=rope)
        x = x + self.attn2(self.norm2(x), context=context, rope=rope)
        return x + self.ff(self.norm3(x))


class HunyuanDiT2DModel(nn.Module):
    def __init__(self, cfg, vae_scale_factor=8):
        super().__init__()
        heads, head_dim = cfg["num_attention_heads"], cfg["attention_head_dim"]
        dim = heads * head_dim
        self.cfg, self.heads, self.dim = cfg, heads, dim
        self.patch = cfg.get("patch_size", 2)
        self.rope_base = 512 // vae_scale_factor // self.patch      # the pipeline's RoPE base size, 512 px in tokens
        self.in_channels = cfg.get("in_channels", 4)
        self.out_channels = self.in_channels * 2 if cfg.get("learn_sigma", True) else cfg.get("out_channels") or self.in_channels
        self.num_layers = cfg["num_layers"]
        if self.num_layers % 2:
            raise SystemExit(f"num_layers {self.num_layers}: the long skips pair blocks 0..n/2-2 with n/2+1..n-1, so it must be even")
        hidden = cfg.get("hidden_size", dim)
        cross, cross_t5 = cfg.get("cross_attention_dim", 1024), cfg.get("cross_attention_dim_t5", 2048)
        text_len, text_len_t5 = cfg.get("text_len", 77), cfg.get("text_len_t5", 256)
        self.text_embedder = TextProjection(cross_t5, cross_t5 * 4, cross)
        self.text_embedding_padding = nn.Parameter(torch.randn(text_len + text_len_t5, cross))
        self.pos_embed = nn.Module()
        self.pos_embed.proj = nn.Conv2d(self.in_channels, hidden, kernel_size=self.patch, stride=self.patch)
        self.time_extra_emb = CombinedEmbedding(hidden, cfg.get("pooled_projection_dim", 1024), text_len_t5, cross_t5,
                                                cfg.get("use_style_cond_and_image_meta_size", True), cfg.get("frame_phase_embedding", False))
        # BatchRender's extensions (config frame_phase_token): the phase as one more cross-attention context token;
        # (frame_phase_token_text) its embedder also reads the pooled T5 text.
        self.frame_phase_token_text = cfg.get("frame_phase_token_text", False)
        token_in = 256 + (cfg.get("pooled_projection_dim", 1024) if self.frame_phase_token_text else 0)
        self.frame_phase_token_embedder = TimestepEmbedding(token_in, cross) if cfg.get("frame_phase_token", False) else None
        ff_inner = int(dim * cfg.get("mlp_ratio", 4.0))
        self.blocks = nn.ModuleList([Block(dim, heads, ff_inner, cross, skip=i > self.num_layers // 2)
                                     for i in range(self.num_layers)])
        self.norm_out = nn.Module()
        self.norm_out.linear = nn.Linear(dim, 2 * dim)
        self.proj_out = nn.Linear(dim, self.patch * self.patch * self.out_channels)

    def rope(self, grid_h, grid_w):
        """Pipeline's image RoPE tables (diffusers >= 0.32 torch path), base size 512 px in tokens."""
        base = self.rope_base
        r = grid_h / grid_w
        if r > 1:
            rh, rw = base, int(round(base / grid_h * grid_w))
        else:
            rw, rh = base, int(round(base / grid_w * grid_h))
        top, left = int(round((base - rh) / 2.0)), int(round((base - rw) / 2.0))
        start, stop = (top, left), (top + rh, left + rw)
        rows = torch.linspace(start[0], stop[0] * (grid_h - 1) / grid_h, grid_h, dtype=torch.float32)
        cols = torch.linspace(start[1], stop[1] * (grid_w - 1) / grid_w, grid_w, dtype=torch.float32)
        xs, ys = torch.meshgrid(cols, rows, indexing="xy")          # each [grid_h, grid_w]
        half = (self.dim // self.heads) // 2
        freqs = 1.0 / (10000 ** (torch.arange(0, half, 2)[: half // 2].float() / half))

        def one_axis(pos):
            f = torch.outer(pos.reshape(-1), freqs)
            return f.cos().repeat_interleave(2, dim=1), f.sin().repeat_interleave(2, dim=1)
        cx, sx = one_axis(xs)
        cy, sy = one_axis(ys)
        return torch.cat([cx, cy], dim=1), torch.cat([sx, sy], dim=1)

    def forward(self, hidden_states, timestep, encoder_hidden_states, text_embedding_mask,
                encoder_hidden_states_t5, text_embedding_mask_t5, image_meta_size=None, style=None, frame_phase=None):
        b, _, hl, wl = hidden_states.shape
        h, w = hl // self.patch, wl // self.patch
        rope = self.rope(h, w)
        x = self.pos_embed.proj(hidden_states).flatten(2).transpose(1, 2)          # [B, N, D]
        pooled = self.time_extra_emb.pooler(encoder_hidden_states_t5)             # [B, P]
        temb = self.time_extra_emb(timestep, pooled, image_meta_size, style, x.dtype, frame_phase)
        t5 = self.text_embedder(encoder_hidden_states_t5)
        context = torch.cat([encoder_hidden_states, t5], dim=1)
        mask = torch.cat([text_embedding_mask, text_embedding_mask_t5], dim=-1).unsqueeze(2).bool()
        context = torch.where(mask, context, self.text_embedding_padding.to(context.dtype))
        if self.frame_phase_token_embedder is not None:
            token_in = phase_sinusoid(frame_phase, b).to(context.dtype)                                     # [B, 256]
            if self.frame_phase_token_text:
                token_in = torch.cat([token_in, pooled], dim=1)                                            # [B, 256 + P]
            token = self.frame_phase_token_embedder(token_in)                                              # [B, Dc]
            context = torch.cat([context, token[:, None]], dim=1)                                          # [B, L + 1, Dc]
        skips = []
        for i, block in enumerate(self.blocks):
            skip = skips.pop() if i > self.num_layers // 2 else None
            x = block(x, temb, context, rope, skip)
            if i < self.num_layers // 2 - 1:
                skips.append(x)
        emb = self.norm_out.linear(F.silu(temb.float()).to(x.dtype))
        scale, shift = emb.chunk(2, dim=1)
        x = F.layer_norm(x, (self.dim,), eps=1e-6) * (1 + scale)[:, None, :] + shift[:, None, :]
        x = self.proj_out(x)
        x = x.reshape(b, h, w, self.patch, self.patch, self.out_channels)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(b, self.out_channels, h * self.patch, w * self.patch)


def load_model(weights_path, cfg, vae_scale_factor):
    model = HunyuanDiT2DModel(cfg, vae_scale_factor)
    state = load_safetensors(weights_path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise SystemExit(f"{weights_path}: missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise SystemExit(f"{weights_path}: '{k}' has shape {list(state[k].shape)}, the config needs {list(v.shape)}")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()


def make_inputs(cfg, batch, height, width, vae_scale_factor, seed):
    g = torch.Generator().manual_seed(seed)
    text_len, text_len_t5 = cfg.get("text_len", 77), cfg.get("text_len_t5", 256)
    inputs = {
        "hidden_states": torch.randn(batch, cfg.get("in_channels", 4), height // vae_scale_factor, width // vae_scale_factor, generator=g),
        "timestep": torch.randint(1, 1000, (batch,), generator=g).float(),
        "encoder_hidden_states": torch.randn(batch, text_len, cfg.get("cross_attention_dim", 1024), generator=g),
        "text_embedding_mask": (torch.arange(text_len)[None, :] < torch.randint(4, text_len, (batch, 1), generator=g)).long(),
        "encoder_hidden_states_t5": torch.randn(batch, text_len_t5, cfg.get("cross_attention_dim_t5", 2048), generator=g),
        "text_embedding_mask_t5": (torch.arange(text_len_t5)[None, :] < torch.randint(4, text_len_t5, (batch, 1), generator=g)).long(),
    }
    if cfg.get("use_style_cond_and_image_meta_size", True):
        inputs["image_meta_size"] = torch.tensor([[height, width, height, width, 0, 0]] * batch, dtype=torch.float32)
        inputs["style"] = torch.zeros(batch, dtype=torch.long)
    return inputs

# ------------------------------------------------------------------------------------------------------- timing


def time_forward(model, inputs, repeats):
    with torch.no_grad():
        out = model(**inputs)                       # warm-up (allocations, oneDNN primitive caches)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            out = model(**inputs)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return out, times[len(times) // 2], times


def blas_info():
    libs = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower() and ".so" in line})
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    t = time.perf_counter(); n = 8
    for _ in range(n):
        a @ b
    gflops = 2 * 1024 ** 3 * n / (time.perf_counter() - t) / 1e9
    return {"libraries": libs, "sgemm1024Gflops": round(gflops, 1), "build": torch.__config__.show().split("BLAS_INFO=")[-1].split(",")[0]}


def snr_db(test, ref):
    noise = (test.double() - ref.double()).pow(2).sum().item()
    signal = ref.double().pow(2).sum().item()
    return float("inf") if noise == 0 else 10 * math.log10(signal / noise)


def quantized(model, engine):
    torch.backends.quantized.engine = engine
    # The same layers BatchRender quantizes: every Linear inside the transformer blocks but the long-skip ones.
    spec = {"blocks": torch.ao.quantization.default_dynamic_qconfig}
    spec.update({name: None for name, _ in model.named_modules() if name.endswith("skip_linear")})
    return torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)


def main():
    torch.set_num_threads(ARGS.threads)
    with open(ARGS.config) as f:
        cfg = json.load(f)
    model = load_model(ARGS.weights, cfg, ARGS.vae_scale_factor)
    inputs = load_safetensors(ARGS.inputs) if ARGS.inputs else make_inputs(cfg, ARGS.batch, ARGS.height, ARGS.width, ARGS.vae_scale_factor, ARGS.seed)
    if "hidden_states" not in inputs:
        raise SystemExit(f"{ARGS.inputs}: no 'hidden_states' tensor")
    inputs = {k: v for k, v in inputs.items() if k in HunyuanDiT2DModel.forward.__code__.co_varnames}

    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_info(),
              "batch": int(inputs["hidden_states"].shape[0]), "latent": list(inputs["hidden_states"].shape[2:]),
              "repeats": ARGS.repeats}
    out_fp32, ms_fp32, all_fp32 = time_forward(model, inputs, ARGS.repeats)
    report["ms"] = {"fp32": round(ms_fp32, 2)}
    report["samplesMs"] = {"fp32": [round(t, 2) for t in all_fp32]}
    outputs = {"output_fp32": out_fp32}

    if not ARGS.skip_int8:
        engines = [e for e in (["onednn", "qnnpack"] if ARGS.engine == "best" else [ARGS.engine])
                   if e in torch.backends.quantized.supported_engines]
        per_engine = {}
        best = None
        for engine in engines:
            qmodel = quantized(load_model(ARGS.weights, cfg, ARGS.vae_scale_factor), engine)
            out, ms, samples = time_forward(qmodel, inputs, ARGS.repeats)
            per_engine[engine] = {"ms": round(ms, 2), "snrDb": round(snr_db(out, out_fp32), 2)}
            if best is None or ms < best[1]:
                best = (engine, ms, out, samples)
        engine, ms, out, samples = best
        report["engines"] = per_engine
        report["engine"] = engine
        report["ms"]["int8-dynamic"] = round(ms, 2)
        report["samplesMs"]["int8-dynamic"] = [round(t, 2) for t in samples]
        report["snrDb"] = {"int8-dynamic": round(snr_db(out, out_fp32), 2)}
        outputs["output_int8"] = out

    save_safetensors(ARGS.output, {**outputs, **{f"input.{k}": v for k, v in inputs.items()}})
    report["output"] = os.path.abspath(ARGS.output)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
