"""Real bits / estimated bits of the LIC codec over Kodak (target ≤ 1.01).

Estimated bits: −Σ log2 of the model's likelihoods (eval mode: what an ideal entropy
coder would spend). Real bits: 8 × the payload bytes of the ``.hdc`` file that
``LICCodec.encode`` writes (rANS streams). The container header (model id, size,
stream table, CRC) is reported separately.

    python benchmarks/rate_overhead.py [--ckpt runs/lic-tiny/checkpoints/last.ckpt] [--kodak DIR]

Without ``--ckpt`` a tiny-preset checkpoint is trained first (plain loop, random
128² crops of ``--photos``, by default ../shared/data/photos, else of Kodak itself;
``--steps``, about a minute on a CPU). Exits 0 with a message when the Kodak folder is absent.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hdc_lightning.codec import export_checkpoint, load_codec, unpack  # noqa: E402
from hdc_lightning.codec.imageio import read_image  # noqa: E402
from hdc_lightning.models.lic import estimated_bits  # noqa: E402
from hdc_lightning.registry import build  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def train_tiny(folder: Path, steps: int, lmbda: float, out: Path, seed: int = 0) -> Path:
    """A tiny-preset checkpoint from ``steps`` Adam steps on random 128² crops (batch 4)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    photos = [read_image(p) for p in images_in(folder)]
    spec = {"name": "lic", "preset": "tiny", "args": {}}
    model = build("model", "lic", preset="tiny")
    net = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam([{"params": net, "lr": 5e-4}, {"params": aux, "lr": 1e-3}])

    def crop(img: torch.Tensor, s: int = 128) -> torch.Tensor:
        top, left = rng.randrange(img.shape[1] - s + 1), rng.randrange(img.shape[2] - s + 1)
        return img[:, top : top + s, left : left + s]

    t0 = time.time()
    for step in range(steps):
        x = torch.stack([crop(rng.choice(photos)) for _ in range(4)])
        out_ = model(x)
        bpp = estimated_bits(out_.likelihoods).sum() / x[:, 0].numel()
        loss = lmbda * 255**2 * torch.mean((out_.x_hat - x) ** 2) + bpp
        (loss + model.aux_loss()).backward()
        torch.nn.utils.clip_grad_norm_(net, 1.0)
        opt.step()
        opt.zero_grad()
        if step % 100 == 0 or step == steps - 1:
            print(f"  train step {step:4d}: loss {loss.item():.3f}, bpp {bpp.item():.3f} ({time.time() - t0:.0f} s)")
    export_checkpoint(model, spec, str(out))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", help="checkpoint of a LIC model (default: train a tiny one now)")
    ap.add_argument("--kodak", default=str(SHARED / "kodak"), help="folder of test images")
    ap.add_argument("--max-images", type=int, default=24)
    ap.add_argument("--photos", help="training images when no --ckpt is given (images of at least 128²)")
    ap.add_argument("--steps", type=int, default=600, help="training steps when no --ckpt is given")
    ap.add_argument("--lmbda", type=float, default=0.0035, help="λ when training (tiny.yaml's)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    kodak = Path(args.kodak)
    if not kodak.is_dir():
        print(f"rate_overhead: skipped, test images not found at {kodak}")
        return 0
    files = images_in(kodak)[: args.max_images]
    if args.ckpt:
        codec = load_codec(args.ckpt)
    else:
        default = SHARED / "photos" if (SHARED / "photos").is_dir() else kodak
        source = Path(args.photos) if args.photos else default
        print(f"no --ckpt: training the tiny preset for {args.steps} steps on crops of {source}")
        with tempfile.TemporaryDirectory() as tmp:
            codec = load_codec(str(train_tiny(source, args.steps, args.lmbda, Path(tmp) / "tiny.ckpt")))
    print(f"model {codec.model_id}, {len(files)} images from {kodak}")

    est_total = real_total = header_total = pixels_total = 0.0
    ratios, headers = [], []
    for path in files:
        x = read_image(path)
        with torch.no_grad():
            est = float(estimated_bits(codec.model(x[None]).likelihoods))
        data = codec.encode(x)
        header = unpack(data).header
        real = 8.0 * (len(data) - header.size)
        ratios.append(real / est)
        headers.append(header.size)
        est_total, real_total = est_total + est, real_total + real
        header_total += header.size
        pixels_total += x.shape[1] * x.shape[2]
    n = len(files)
    print(f"estimated bpp        {est_total / pixels_total:.4f}")
    print(f"real bpp (payload)   {real_total / pixels_total:.4f}")
    print(f"file bpp (w/ header) {(real_total + 8 * header_total) / pixels_total:.4f}")
    print(f"header bytes         mean {header_total / n:.1f}, max {max(headers)} (target <= 32)")
    print(f"per-image real/est   min {min(ratios):.4f}, max {max(ratios):.4f}")
    print(f"RATIO real/estimated bits = {real_total / est_total:.4f}  (target <= 1.01)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
