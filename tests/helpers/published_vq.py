"""Published VQGANs in miniature, with random weights, saved as their projects save them.

Taming: the original modules from the ``taming-transformers`` wheel (skipped when absent).
LlamaGen: its code is on no registry, so :func:`llamagen_state` writes the keys and shapes
its ``vq_model.py`` has and :func:`llamagen_forward` computes, from those tensors alone, what
its modules compute (GroupNorm(32), swish, single-head attention with q/k/v convs, l2-
normalised codes). Every tensor is random, norm affines included: the default init (ones,
zeros) would let a swapped or misplaced norm go unnoticed.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

# Small enough for a CPU test; GroupNorm(32) needs every width to be a multiple of 32.
SMALL = dict(ch=32, ch_mult=(1, 2), num_res_blocks=1, z=32, codebook_size=64)
IMAGE = (2, 3, 32, 32)  # → a 16×16 index map per image (f2)


def randomise(tensors, seed: int) -> None:
    """Every tensor random: weights ~ N(0, 1/fan_in), norm scales ~ 1 ± 0.2, biases ~ N(0, 0.1²);
    float32 values (the published files are float32) held in float64 tensors."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in tensors:
            r = torch.randn(t.shape, generator=g, dtype=torch.float64)
            if t.dim() >= 2:
                t.copy_((r / t[0].numel() ** 0.5).float())
            else:
                t.copy_((1 + 0.2 * r if t.dim() == 1 and _is_scale(t) else 0.1 * r).float())


def _is_scale(t: torch.Tensor) -> bool:
    return bool(getattr(t, "_norm_scale", False))


def spread_codebook(codebook: torch.Tensor, z: torch.Tensor, seed: int) -> None:
    """Codes drawn from encoder outputs ``z`` [N, D] (plus noise), so the lookups use many codes."""
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(z.shape[0], generator=g)[: codebook.shape[0]]
    with torch.no_grad():
        codebook.copy_((z[pick] + 0.01 * z.std() * torch.randn(codebook.shape, generator=g, dtype=z.dtype)).float())


def images(seed: int = 0) -> torch.Tensor:
    return torch.rand(IMAGE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- taming-transformers
class TamingVQGAN(nn.Module):
    """taming.models.vqgan.VQModel's modules and dataflow (its Lightning shell left out)."""

    def __init__(self, ch: int, ch_mult, num_res_blocks: int, z: int, codebook_size: int, resolution: int = 32):
        super().__init__()
        from taming.modules.diffusionmodules.model import Decoder, Encoder
        from taming.modules.vqvae.quantize import VectorQuantizer

        dd = dict(ch=ch, out_ch=3, ch_mult=tuple(ch_mult), num_res_blocks=num_res_blocks, dropout=0.0)
        dd.update(attn_resolutions=[resolution // 2 ** (len(ch_mult) - 1)], in_channels=3, resolution=resolution)
        self.encoder = Encoder(**dd, z_channels=z, double_z=False)
        self.decoder = Decoder(**dd, z_channels=z)
        self.quantize = VectorQuantizer(codebook_size, z, beta=0.25)
        self.quant_conv = nn.Conv2d(z, z, 1)
        self.post_quant_conv = nn.Conv2d(z, z, 1)

    def pre_quant(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(2 * x - 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices [B,h,w], reconstruction in [0,1]-ish) as taming computes them."""
        h = self.pre_quant(x)
        z_q, _, (_, _, idx) = self.quantize(h)
        x_hat = (self.decoder(self.post_quant_conv(z_q)) + 1) / 2
        return idx.view(h.shape[0], *h.shape[-2:]), x_hat


def taming_reference(seed: int = 0, **overrides) -> TamingVQGAN:
    model = TamingVQGAN(**{**SMALL, **overrides}).double().eval()
    for m in model.modules():
        if isinstance(m, nn.GroupNorm):
            m.weight._norm_scale = True
    randomise(model.parameters(), seed)
    with torch.no_grad():
        z = model.pre_quant(images(seed + 1)).permute(0, 2, 3, 1).flatten(0, 2)
    spread_codebook(model.quantize.embedding.weight, z, seed)
    return model


def taming_checkpoint(model: TamingVQGAN) -> dict:
    """The published layout: a PyTorch Lightning 1.0 checkpoint with the training loss inside."""
    state = {k: v.float() for k, v in model.state_dict().items()}
    state["loss.discriminator.main.0.weight"] = torch.randn(8, 3, 4, 4)
    state["loss.perceptual_loss.lin0.model.1.weight"] = torch.randn(1, 8, 1, 1)
    return {"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.0.8", "state_dict": state}


# ---------------------------------------------------------------- LlamaGen
def _res(out: dict, p: str, cin: int, cout: int) -> None:
    out.update({f"{p}.norm1.weight": (cin,), f"{p}.norm1.bias": (cin,), f"{p}.conv1.weight": (cout, cin, 3, 3)})
    out.update({f"{p}.conv1.bias": (cout,), f"{p}.norm2.weight": (cout,), f"{p}.norm2.bias": (cout,)})
    out.update({f"{p}.conv2.weight": (cout, cout, 3, 3), f"{p}.conv2.bias": (cout,)})
    if cin != cout:
        out.update({f"{p}.nin_shortcut.weight": (cout, cin, 1, 1), f"{p}.nin_shortcut.bias": (cout,)})


def _attn(out: dict, p: str, c: int) -> None:
    out.update({f"{p}.norm.weight": (c,), f"{p}.norm.bias": (c,)})
    for name in ("q", "k", "v", "proj_out"):
        out.update({f"{p}.{name}.weight": (c, c, 1, 1), f"{p}.{name}.bias": (c,)})


def llamagen_shapes(ch: int, ch_mult, num_res_blocks: int, z: int, codebook_size: int, dim: int = 8) -> dict:
    """Key → shape of LlamaGen's VQModel state dict (tokenizer/tokenizer_image/vq_model.py)."""
    out: dict = {"encoder.conv_in.weight": (ch, 3, 3, 3), "encoder.conv_in.bias": (ch,)}
    n, cin = len(ch_mult), ch
    for i, m in enumerate(ch_mult):
        for j in range(num_res_blocks):
            _res(out, f"encoder.conv_blocks.{i}.res.{j}", cin, ch * m)
            cin = ch * m
            if i == n - 1:
                _attn(out, f"encoder.conv_blocks.{i}.attn.{j}", cin)
        if i != n - 1:
            out.update({f"encoder.conv_blocks.{i}.downsample.conv.weight": (cin, cin, 3, 3)})
            out.update({f"encoder.conv_blocks.{i}.downsample.conv.bias": (cin,)})
    for side in ("encoder", "decoder"):
        _res(out, f"{side}.mid.0", cin, cin)
        _attn(out, f"{side}.mid.1", cin)
        _res(out, f"{side}.mid.2", cin, cin)
    out.update({"encoder.norm_out.weight": (cin,), "encoder.norm_out.bias": (cin,)})
    out.update({"encoder.conv_out.weight": (z, cin, 3, 3), "encoder.conv_out.bias": (z,)})
    out.update({"decoder.conv_in.weight": (cin, z, 3, 3), "decoder.conv_in.bias": (cin,)})
    for k, i in enumerate(reversed(range(n))):
        for j in range(num_res_blocks + 1):
            _res(out, f"decoder.conv_blocks.{k}.res.{j}", cin, ch * ch_mult[i])
            cin = ch * ch_mult[i]
            if i == n - 1:
                _attn(out, f"decoder.conv_blocks.{k}.attn.{j}", cin)
        if i != 0:
            out.update({f"decoder.conv_blocks.{k}.upsample.conv.weight": (cin, cin, 3, 3)})
            out.update({f"decoder.conv_blocks.{k}.upsample.conv.bias": (cin,)})
    out.update({"decoder.norm_out.weight": (cin,), "decoder.norm_out.bias": (cin,)})
    out.update({"decoder.conv_out.weight": (3, cin, 3, 3), "decoder.conv_out.bias": (3,)})
    out.update({"quantize.embedding.weight": (codebook_size, dim), "quantize.codebook_used": (65536,)})
    out.update({"quant_conv.weight": (dim, z, 1, 1), "quant_conv.bias": (dim,)})
    out.update({"post_quant_conv.weight": (z, dim, 1, 1), "post_quant_conv.bias": (z,)})
    return out


def llamagen_state(seed: int = 0, **overrides) -> dict[str, torch.Tensor]:
    """A random float64 LlamaGen VQ state (SMALL shapes), codebook spread over encoder outputs."""
    cfg = {**SMALL, **overrides}
    state = {k: torch.zeros(s, dtype=torch.float64) for k, s in llamagen_shapes(**cfg).items()}
    for key, t in state.items():
        t._norm_scale = key.endswith(".weight") and t.dim() == 1
    randomise([t for k, t in state.items() if k != "quantize.codebook_used"], seed)
    z = _quant_input(state, images(seed + 1), cfg["num_res_blocks"], len(cfg["ch_mult"]))
    spread_codebook(state["quantize.embedding.weight"], F.normalize(z, dim=-1), seed)
    return state


def llamagen_checkpoint(state: dict) -> dict:
    """What LlamaGen's vq_train.py saves (its optimiser states left out)."""
    return {
        "model": {k: v.float() for k, v in state.items()},
        "steps": 1000,
        "args": argparse.Namespace(vq_model="VQ-16"),
    }


def _gn(s: dict, p: str, h: torch.Tensor) -> torch.Tensor:
    return F.group_norm(h, 32, s[f"{p}.weight"], s[f"{p}.bias"], eps=1e-6)


def _conv(s: dict, p: str, h: torch.Tensor, stride: int = 1, padding: int | None = None) -> torch.Tensor:
    w = s[f"{p}.weight"]
    return F.conv2d(h, w, s[f"{p}.bias"], stride, w.shape[-1] // 2 if padding is None else padding)


def _block(s: dict, p: str, h: torch.Tensor) -> torch.Tensor:
    if f"{p}.q.weight" in s:  # attention: softmax(q·k / √C) over the keys, applied to v
        a = _gn(s, f"{p}.norm", h)
        b, c, hh, ww = a.shape
        q, k, v = (_conv(s, f"{p}.{n}", a).reshape(b, c, -1) for n in "qkv")
        w = torch.softmax(q.transpose(1, 2) @ k * c**-0.5, dim=2)
        return h + _conv(s, f"{p}.proj_out", (v @ w.transpose(1, 2)).reshape(b, c, hh, ww))
    r = _conv(s, f"{p}.conv1", F.silu(_gn(s, f"{p}.norm1", h)))
    r = _conv(s, f"{p}.conv2", F.silu(_gn(s, f"{p}.norm2", r)))
    return (_conv(s, f"{p}.nin_shortcut", h) if f"{p}.nin_shortcut.weight" in s else h) + r


def _level(s: dict, p: str, h: torch.Tensor, n_res: int) -> torch.Tensor:
    for j in range(n_res):
        h = _block(s, f"{p}.res.{j}", h)
        if f"{p}.attn.{j}.q.weight" in s:
            h = _block(s, f"{p}.attn.{j}", h)
    return h


def _quant_input(s: dict, x: torch.Tensor, n_res: int, n: int) -> torch.Tensor:
    h = _conv(s, "encoder.conv_in", 2 * x - 1)
    for i in range(n):
        h = _level(s, f"encoder.conv_blocks.{i}", h, n_res)
        if i != n - 1:
            h = _conv(s, f"encoder.conv_blocks.{i}.downsample.conv", F.pad(h, (0, 1, 0, 1)), stride=2, padding=0)
    for j in range(3):
        h = _block(s, f"encoder.mid.{j}", h)
    h = _conv(s, "encoder.conv_out", F.silu(_gn(s, "encoder.norm_out", h)))
    return _conv(s, "quant_conv", h).permute(0, 2, 3, 1).flatten(0, 2)


def llamagen_forward(s: dict, x: torch.Tensor, n_res: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices [B,h,w], reconstruction (dec+1)/2) of LlamaGen's VQModel with state ``s``."""
    b, f = x.shape[0], 2 ** (n - 1)
    zf = F.normalize(_quant_input(s, x, n_res, n), dim=-1)
    e = F.normalize(s["quantize.embedding.weight"], dim=-1)
    d = (zf**2).sum(1, keepdim=True) + (e**2).sum(1) - 2 * zf @ e.t()
    idx = d.argmin(1).view(b, x.shape[-2] // f, x.shape[-1] // f)
    h = _conv(s, "post_quant_conv", e[idx].permute(0, 3, 1, 2))
    h = _conv(s, "decoder.conv_in", h)
    for j in range(3):
        h = _block(s, f"decoder.mid.{j}", h)
    for k in range(n):
        h = _level(s, f"decoder.conv_blocks.{k}", h, n_res + 1)
        if k != n - 1:
            h = _conv(s, f"decoder.conv_blocks.{k}.upsample.conv", F.interpolate(h, scale_factor=2.0, mode="nearest"))
    h = _conv(s, "decoder.conv_out", F.silu(_gn(s, "decoder.norm_out", h)))
    return idx, (h + 1) / 2
