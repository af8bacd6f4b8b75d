#!/usr/bin/env python3
"""Golden vectors for the TorchSharp text encoders and VAE (tests/BatchRender.Model.Tests/Golden/*.safetensors).

bert/t5/vae.safetensors hold the weights of a small random model under the Hugging Face state-dict names, plus the inputs and
reference outputs under "golden.*" keys. References:
  - VAE (AutoencoderKL encode mean and decode): diffusers' own modules, imported from a diffusers checkout's src/
    folder (--diffusers) with diffusers_stubs.py standing in for packages Debian's Python lacks. On PyTorch 1.13 (no
    scaled_dot_product_attention) diffusers picks its plain AttnProcessor.
  - Schedulers (schedulers.safetensors + schedulers.json): diffusers' DDPMScheduler, DDIMScheduler and
    DPMSolverMultistepScheduler run for a few steps on a fake model output.
  - BERT and T5 encoders: transformers is not installable here (no Debian package, no PyPI), so bert_reference /
    t5_reference below restate transformers' BertModel / T5EncoderModel forward passes (modeling_bert.py,
    modeling_t5.py) op by op in PyTorch.

Run with Debian's python3-torch:  /usr/bin/python3 bench/golden/make_golden.py --diffusers /path/to/diffusers/src \
    --out tests/BatchRender.Model.Tests/Golden
"""
import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)


# ---------------------------------------------------------------- safetensors (written by hand: no package here)

def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous() if tensors[name].is_floating_point() else tensors[name].contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def randomize_norms(state, generator):
    """Random affine norm parameters, so the goldens exercise them (fresh ones are exactly 1 and 0)."""
    for name, t in state.items():
        if ("norm" in name.lower()) and t.dim() == 1:
            base = 1.0 if name.endswith("weight") else 0.0
            t.copy_(base + 0.1 * torch.randn(t.shape, generator=generator))


# ---------------------------------------------------------------- BERT (transformers BertModel, eval mode)

BERT = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=32, type_vocab_size=2, layer_norm_eps=1e-12)


def bert_state(c, g):
    H, I = c["hidden_size"], c["intermediate_size"]
    s = {
        "embeddings.word_embeddings.weight": torch.randn(c["vocab_size"], H, generator=g),
        "embeddings.position_embeddings.weight": torch.randn(c["max_position_embeddings"], H, generator=g),
        "embeddings.token_type_embeddings.weight": torch.randn(c["type_vocab_size"], H, generator=g),
        "embeddings.LayerNorm.weight": torch.ones(H), "embeddings.LayerNorm.bias": torch.zeros(H),
        "pooler.dense.weight": 0.1 * torch.randn(H, H, generator=g), "pooler.dense.bias": 0.1 * torch.randn(H, generator=g),
    }
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            s[p + f"attention.self.{n}.weight"] = 0.2 * torch.randn(H, H, generator=g)
            s[p + f"attention.self.{n}.bias"] = 0.1 * torch.randn(H, generator=g)
        s[p + "attention.output.dense.weight"] = 0.2 * torch.randn(H, H, generator=g)
        s[p + "attention.output.dense.bias"] = 0.1 * torch.randn(H, generator=g)
        s[p + "attention.output.LayerNorm.weight"] = torch.ones(H)
        s[p + "attention.output.LayerNorm.bias"] = torch.zeros(H)
        s[p + "intermediate.dense.weight"] = 0.2 * torch.randn(I, H, generator=g)
        s[p + "intermediate.dense.bias"] = 0.1 * torch.randn(I, generator=g)
        s[p + "output.dense.weight"] = 0.2 * torch.randn(H, I, generator=g)
        s[p + "output.dense.bias"] = 0.1 * torch.randn(H, generator=g)
        s[p + "output.LayerNorm.weight"] = torch.ones(H)
        s[p + "output.LayerNorm.bias"] = torch.zeros(H)
    randomize_norms(s, g)
    return s


def bert_reference(s, c, ids, mask):
    B, L = ids.shape
    H, nh = c["hidden_size"], c["num_attention_heads"]
    hd = H // nh
    eps = c["layer_norm_eps"]
    ln = lambda x, p: F.layer_norm(x, (H,), s[p + ".weight"], s[p + ".bias"], eps)
    lin = lambda x, p: F.linear(x, s[p + ".weight"], s[p + ".bias"])
    x = (s["embeddings.word_embeddings.weight"][ids] + s["embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)]
         + s["embeddings.position_embeddings.weight"][torch.arange(L)][None])
    x = ln(x, "embeddings.LayerNorm")
    # get_extended_attention_mask: (1 - mask) * finfo.min, broadcast over heads and queries
    ext = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        heads = lambda t: t.view(B, L, nh, hd).transpose(1, 2)
        q, k, v = (heads(lin(x, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + ext
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, H)
        a = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inter = F.gelu(lin(a, p + "intermediate.dense"))  # hidden_act "gelu": exact erf form
        x = ln(lin(inter, p + "output.dense") + a, p + "output.LayerNorm")
    pooled = torch.tanh(lin(x[:, 0], "pooler.dense"))
    return x, pooled


# ---------------------------------------------------------------- T5 encoder (transformers T5EncoderModel, eval)

T5 = dict(vocab_size=100, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
          relative_attention_num_buckets=16, relative_attention_max_distance=12, layer_norm_epsilon=1e-6)


def t5_state(c, g):
    d, inner, ff = c["d_model"], c["num_heads"] * c["d_kv"], c["d_ff"]
    s = {"shared.weight": torch.randn(c["vocab_size"], d, generator=g), "encoder.final_layer_norm.weight": torch.ones(d)}
    for i in range(c["num_layers"]):
        p = f"encoder.block.{i}.layer."
        for n in ("q", "k", "v"):
            s[p + f"0.SelfAttention.{n}.weight"] = 0.2 * torch.randn(inner, d, generator=g)
        s[p + "0.SelfAttention.o.weight"] = 0.2 * torch.randn(d, inner, generator=g)
        if i == 0:
            s[p + "0.SelfAttention.relative_attention_bias.weight"] = torch.randn(c["relative_attention_num_buckets"], c["num_heads"], generator=g)
        s[p + "0.layer_norm.weight"] = torch.ones(d)
        s[p + "1.DenseReluDense.wi_0.weight"] = 0.2 * torch.randn(ff, d, generator=g)
        s[p + "1.DenseReluDense.wi_1.weight"] = 0.2 * torch.randn(ff, d, generator=g)
        s[p + "1.DenseReluDense.wo.weight"] = 0.2 * torch.randn(d, ff, generator=g)
        s[p + "1.layer_norm.weight"] = torch.ones(d)
    randomize_norms(s, g)
    return s


def t5_bucket(relative_position, num_buckets, max_distance):
    # T5Attention._relative_position_bucket, bidirectional=True
    num_buckets //= 2
    buckets = (relative_position > 0).to(torch.long) * num_buckets
    relative_position = torch.abs(relative_position)
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    large = max_exact + (torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, relative_position, large)


def t5_reference(s, c, ids, mask):
    B, L = ids.shape
    nh, dkv, eps = c["num_heads"], c["d_kv"], c["layer_norm_epsilon"]

    def rms(x, p):
        var = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        return s[p + ".weight"] * (x * torch.rsqrt(var + eps))

    gelu_new = lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    x = s["shared.weight"][ids]
    rel = torch.arange(L)[None, :] - torch.arange(L)[:, None]  # memory - context
    buckets = t5_bucket(rel, c["relative_attention_num_buckets"], c["relative_attention_max_distance"])
    bias = s["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"][buckets].permute(2, 0, 1)[None]
    bias = bias + (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
    for i in range(c["num_layers"]):
        p = f"encoder.block.{i}.layer."
        n = rms(x, p + "0.layer_norm")
        heads = lambda t: t.view(B, L, nh, dkv).transpose(1, 2)
        q, k, v = (heads(F.linear(n, s[p + f"0.SelfAttention.{w}.weight"])) for w in ("q", "k", "v"))
        scores = q @ k.transpose(3, 2) + bias  # no 1/sqrt(d) scaling in T5
        ctx = (F.softmax(scores.float(), dim=-1).type_as(scores) @ v).transpose(1, 2).reshape(B, L, nh * dkv)
        x = x + F.linear(ctx, s[p + "0.SelfAttention.o.weight"])
        n = rms(x, p + "1.layer_norm")
        h = gelu_new(F.linear(n, s[p + "1.DenseReluDense.wi_0.weight"])) * F.linear(n, s[p + "1.DenseReluDense.wi_1.weight"])
        x = x + F.linear(h, s[p + "1.DenseReluDense.wo.weight"])
    return rms(x, "encoder.final_layer_norm")


# ---------------------------------------------------------------- VAE (diffusers AutoencoderKL)

VAE = dict(in_channels=3, out_channels=3, block_out_channels=(32, 64), layers_per_block=1, latent_channels=4,
           norm_num_groups=8, scaling_factor=0.5, down_block_types=("DownEncoderBlock2D",) * 2,
           up_block_types=("UpDecoderBlock2D",) * 2)


def vae_golden(diffusers_src, g):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import diffusers_stubs  # noqa: F401  (installs the stand-ins)
    sys.path.insert(0, diffusers_src)
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(**VAE).eval()
    state = vae.state_dict()
    with torch.no_grad():
        randomize_norms(state, g)
        for name, t in state.items():
            if "norm" not in name.lower() and t.dim() == 1:
                t.copy_(0.05 * torch.randn(t.shape, generator=g))  # non-zero biases
        vae.load_state_dict(state)
        image = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
        latents = torch.randn(1, 4, 8, 8, generator=g)
        mean_scaled = vae.encode(image).latent_dist.mean * VAE["scaling_factor"]
        decoded = vae.decode(latents / VAE["scaling_factor"]).sample  # what the pipeline does with scaled latents
    out = dict(state)
    out.update({"golden.image": image, "golden.encoded": mean_scaled, "golden.latents": latents, "golden.decoded": decoded})
    return out


# ---------------------------------------------------------------- schedulers (diffusers' own classes)

HUNYUAN_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.018, beta_schedule="scaled_linear",
                         prediction_type="v_prediction", variance_type="fixed_small", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")

SCHEDULER_CASES = [
    ("ddpm", HUNYUAN_SCHEDULER, 10),
    ("ddim", HUNYUAN_SCHEDULER, 10),
    ("dpmsolver++", HUNYUAN_SCHEDULER, 10),
    ("ddpm", dict(beta_schedule="linear", prediction_type="epsilon", timestep_spacing="linspace", clip_sample=True), 6),
    ("ddim", dict(beta_schedule="linear", prediction_type="epsilon", timestep_spacing="trailing", set_alpha_to_one=True), 7),
    ("dpmsolver++", dict(beta_schedule="squaredcos_cap_v2", prediction_type="epsilon"), 8),
    ("dpmsolver++", dict(HUNYUAN_SCHEDULER, timestep_spacing="trailing", solver_type="heun"), 20),
]


def scheduler_golden(out_dir):
    """Runs each sampler for a few steps on a fake model (output = 0.5 x + eps_i, eps_i stored) and records the
    timesteps, tables and every intermediate sample."""
    from diffusers.schedulers.scheduling_ddim import DDIMScheduler
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
    from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler
    classes = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpmsolver++": DPMSolverMultistepScheduler}
    tensors, cases = {}, []
    g = torch.Generator().manual_seed(77)
    for i, (kind, config, steps) in enumerate(SCHEDULER_CASES):
        sched = classes[kind].from_config(dict(config))
        sched.set_timesteps(steps)
        x = torch.randn(1, 4, 4, 4, generator=g)
        eps = torch.randn(len(sched.timesteps), 1, 4, 4, 4, generator=g)
        noise_gen = torch.Generator().manual_seed(1000 + i)
        samples = [x]
        for j, t in enumerate(sched.timesteps):
            x = sched.step(0.5 * x + eps[j], t, x, generator=noise_gen).prev_sample
            samples.append(x)
        p = f"golden.case{i}."
        tensors[p + "timesteps"] = sched.timesteps.to(torch.int64)
        tensors[p + "alphas_cumprod"] = sched.alphas_cumprod
        tensors[p + "eps"] = eps
        tensors[p + "samples"] = torch.stack(samples)
        if kind == "dpmsolver++":
            tensors[p + "sigmas"] = sched.sigmas
        cases.append({"sampler": kind, "config": config, "steps": steps, "noise_seed": 1000 + i})
    save_safetensors(os.path.join(out_dir, "schedulers.safetensors"), tensors)
    with open(os.path.join(out_dir, "schedulers.json"), "w") as f:
        json.dump(cases, f, indent=1)


SDXL_VAE = dict(in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                latent_channels=4, norm_num_groups=32, scaling_factor=0.13025, force_upcast=False,
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)


def sdxl_vae_keys(path):
    """diffusers' AutoencoderKL state-dict keys and shapes for the SDXL VAE config (Hunyuan-DiT v1.2's vae/)."""
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
    vae = AutoencoderKL(**SDXL_VAE)  # ~84M parameters on the CPU: PyTorch 1.13 has no meta-device context
    with open(path, "w") as f:
        for name, t in vae.state_dict().items():
            f.write(name + "\t" + ",".join(str(d) for d in t.shape) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers", required=True, help="path to a diffusers checkout's src/ folder")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    g = torch.Generator().manual_seed(1234)

    ids = torch.tensor([[2, 17, 33, 5, 60, 8, 71, 3, 0, 0, 0, 0], [2, 44, 9, 3, 0, 0, 0, 0, 0, 0, 0, 0]])
    mask = (ids != 0).to(torch.int64)
    mask[:, 0] = 1
    with torch.no_grad():
        s = bert_state(BERT, g)
        hidden, pooled = bert_reference(s, BERT, ids, mask)
        s.update({"golden.input_ids": ids, "golden.attention_mask": mask, "golden.last_hidden_state": hidden, "golden.pooler_output": pooled})
        save_safetensors(os.path.join(a.out, "bert.safetensors"), s)

        ids5 = torch.tensor([[12, 7, 33, 51, 60, 8, 71, 19, 22, 90, 4, 5, 6, 77, 13, 40, 41, 2, 1, 0],
                             [30, 31, 1] + [0] * 17])
        mask5 = torch.zeros_like(ids5)
        mask5[0, :19] = 1
        mask5[1, :3] = 1
        s = t5_state(T5, g)
        hidden = t5_reference(s, T5, ids5, mask5)
        s.update({"golden.input_ids": ids5, "golden.attention_mask": mask5, "golden.last_hidden_state": hidden})
        save_safetensors(os.path.join(a.out, "t5.safetensors"), s)

    save_safetensors(os.path.join(a.out, "vae.safetensors"), vae_golden(a.diffusers, g))
    sdxl_vae_keys(os.path.join(a.out, "sdxl-vae-keys.tsv"))
    scheduler_golden(a.out)
    with open(os.path.join(a.out, "configs.json"), "w") as f:
        json.dump({"bert": BERT, "t5": T5, "vae": {k: list(v) if isinstance(v, tuple) else v for k, v in VAE.items()}}, f, indent=1)
    print("wrote", sorted(os.listdir(a.out)))


if __name__ == "__main__":
    main()
