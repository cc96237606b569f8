"""What the hybrid buys: the `small` model against its own LIC stream, its VQ stream and classical codecs.

    python benchmarks/small_study.py --data KODAK_DIR [--runs runs/small] [--model small] [-o results/small_study]

On every image of ``--data`` (the 24 Kodak images for the published table) it measures,
with real bytes (bpp = file bytes × 8 / pixels) and the project's one metrics module
(PSNR, MS-SSIM, LPIPS-alex, DISTS):

* ``lic``: the LIC stream alone, one point per trained λ (``RUNS/lic_lo``, ``lic``, ``lic_hi``);
* ``hdc-fidelity`` / ``hdc-perceptual``: the hybrid's x̂_lic and x̃ at each mask level;
* ``vq``: the VQ stream alone (the full index map, entropy-coded, through the VQ decoder);
* ``jpeg`` / ``webp`` / ``avif``: each image matched to the hybrid's own bpp at each level;
* knock-outs at decode time of the trained hybrid (not retrained ablations): T's masked
  index accuracy with its DRV v_P and with v_P zeroed, and x̃ without the VQ correction.

It prints one table, writes ``study.json``, a CompressAI-style JSON per curve and
``rd.png`` (bpp vs PSNR and vs LPIPS), and BD-rates of the hybrid against the LIC alone and
against AVIF on PSNR and on LPIPS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from hdc_lightning.codec.api import load_codec
from hdc_lightning.data.images import list_images, read_rgb, to_float
from hdc_lightning.evaluation import bd, classical
from hdc_lightning.evaluation.metrics import MetricSuite
from hdc_lightning.evaluation.plot import rd_figure, save_figure
from hdc_lightning.evaluation.results import aggregate, curve_from_points, write_curve, write_json
from hdc_lightning.models.lic import pad_image
from hdc_lightning.models.hybrid import TOKEN

LIC_RUNS = ("lic_lo", "lic", "lic_hi")
MASKS = ("1/9", "1/4", "auto", "full")
CLASSICAL = ("jpeg", "webp", "avif")
COLUMNS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "lpips", "dists")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of evaluation images (Kodak for the published table)")
    p.add_argument("--runs", default="runs/small", help="run folder of experiments/pipeline/small.yaml (LIC ladder)")
    p.add_argument("--model", default="small", help="hybrid: a pretrained name or a checkpoint path")
    p.add_argument("-o", "--out", default="results/small_study", help="output folder")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    return p.parse_args(argv)


def stage_ckpt(runs: Path, stage: str) -> Path:
    """A stage's checkpoint in either pipeline layout (``<stage>/`` or a link to ``shared/``)."""
    path = runs / stage / "checkpoints" / "last.ckpt"
    if not path.is_file():
        sys.exit(f"small_study: error: {path} not found; train it with `hdc pipeline experiments/pipeline/small.yaml`")
    return path


class Study:
    def __init__(self, images: list[tuple[str, torch.Tensor]]):
        self.images = images
        self.metrics = MetricSuite(lpips=True, dists=True)
        self.records: dict[str, list[list[dict]]] = {}  # curve → points → per-image records
        self.extra: dict[str, float] = {}

    def add(self, curve: str, point: int, name: str, ref: torch.Tensor, rec: torch.Tensor, nbytes: int, **more):
        pts = self.records.setdefault(curve, [])
        while len(pts) <= point:
            pts.append([])
        h, w = ref.shape[-2:]
        pts[point].append({"name": name, "bytes": nbytes, "bpp": nbytes * 8 / (h * w), **more,
                           **self.metrics(ref, rec.clamp(0, 1))})

    def curve(self, name: str):
        points = [aggregate(recs, keys=(*COLUMNS, *{k for r in recs for k in r if k.startswith("x_")}))
                  for recs in self.records[name]]
        return curve_from_points(name, points)


def run_lic(study: Study, runs: Path) -> None:
    for p, stage in enumerate(LIC_RUNS):
        codec = load_codec(stage_ckpt(runs, stage))
        for name, x in study.images:
            data = codec.encode(x)
            study.add("lic", p, name, x, codec.decode(data).image, len(data))


@torch.no_grad()
def run_hybrid(study: Study, model_ref: str) -> list[list[float]]:
    """Both outputs, the knock-outs and T's accuracy at each mask level; returns per-image bpp per level."""
    rates = []
    for p, mask in enumerate(MASKS):
        codec = load_codec(model_ref, mask=mask)
        m = codec.model
        level = []
        for name, x in study.images:
            data = codec.encode(x)
            _, out = codec.decode_full(data, output="both")
            h, w = x.shape[-2:]
            level.append(len(data) * 8 / (h * w))
            truth = m.vq.encode_indices(pad_image(x[None], TOKEN))
            unsent = ~out.sent.expand_as(truth)
            acc = float((out.d_hat == truth)[unsent].float().mean()) if unsent.any() else float("nan")
            # Knock-outs of the trained model (decode side only).
            no_p = m.predictor.decode(out.d_hat, out.sent[None], pad_image(out.x_hat_lic, TOKEN),
                                      torch.zeros_like(out.drvs.v_P) if out.drvs.v_P is not None else None, codec.steps)
            acc_no_p = float((no_p == truth)[unsent].float().mean()) if unsent.any() else float("nan")
            no_corr = m.vq.decode(m.vq.embed(out.d_hat))[..., :h, :w].clamp(0, 1)[0]
            study.add("hdc-perceptual", p, name, x, out.x_tilde[0], len(data), x_index_acc=acc, x_index_acc_no_drv=acc_no_p)
            study.add("hdc-fidelity", p, name, x, out.x_hat_lic[0], len(data))
            study.add("hdc-perceptual-no-correction", p, name, x, no_corr, len(data))
        rates.append(level)
    return rates


@torch.no_grad()
def run_vq(study: Study, model_ref: str) -> None:
    m = load_codec(model_ref).model
    coder = m.vq.index_coder()
    for name, x in study.images:
        xp = pad_image(x[None], TOKEN)
        idx = m.vq.encode_indices(xp)
        data = coder.encode_indices(idx[0].cpu(), torch.ones(idx.shape[1:], dtype=torch.bool))
        h, w = x.shape[-2:]
        study.add("vq", 0, name, x, m.vq.decode_indices(idx)[0, :, :h, :w], len(data))


def run_classical(study: Study, rates: list[list[float]]) -> None:
    matcher = classical.RateMatcher()
    for codec in CLASSICAL:
        for p, level in enumerate(rates):
            for (name, x), target in zip(study.images, level):
                enc = matcher.match(codec, x, target, key=name)
                study.add(codec, p, name, x, classical.decode(enc.data), len(enc.data), x_target_bpp=target)


def bd_rows(curves: dict) -> dict:
    out = {}
    test = curves["hdc-perceptual"]
    for anchor in ("lic", "avif"):
        a = curves[anchor]
        for metric, higher in (("psnr-rgb", True), ("lpips", False)):
            key = f"hdc-perceptual vs {anchor}, {metric}"
            try:
                out[key] = bd.bd_rate(a.results["bpp"], a.results[metric], test.results["bpp"], test.results[metric],
                                      higher_is_better=higher, names=(anchor, "hdc-perceptual"))
            except Exception as e:  # curves that do not overlap in quality have no BD-rate
                out[key] = f"n/a ({(str(e).splitlines() or ['error'])[0]})"
    return out


def table(curves: dict) -> str:
    lines = [f"{'curve':34s} {'point':>5s} " + " ".join(f"{c:>11s}" for c in COLUMNS)]
    for name, c in curves.items():
        for i in range(len(c)):
            vals = [c.results[k][i] if c.has(k) else float("nan") for k in COLUMNS]
            lines.append(f"{name:34s} {i:5d} " + " ".join(f"{v:11.4f}" for v in vals))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    files = list_images(args.data)[: args.limit]
    if not files:
        sys.exit(f"small_study: error: {args.data}: no images")
    images = [(f.name, to_float(read_rgb(f))) for f in files]
    study, out, t0 = Study(images), Path(args.out), time.time()
    out.mkdir(parents=True, exist_ok=True)
    run_lic(study, Path(args.runs))
    rates = run_hybrid(study, args.model)
    run_vq(study, args.model)
    run_classical(study, rates)
    curves = {name: study.curve(name) for name in study.records}
    for name, c in curves.items():
        write_curve(out / f"{name}.json", c)
    low = [sum(r <= 0.05 for r in level) for level in rates]
    summary = {
        "images": len(images), "seconds": round(time.time() - t0, 1), "masks": list(MASKS), "lic_runs": list(LIC_RUNS),
        "curves": {n: c.to_json() for n, c in curves.items()}, "bd_rate_percent": bd_rows(curves),
        "images_at_most_0.05_bpp_per_mask": dict(zip(MASKS, low)),
        "metrics_unavailable": study.metrics.unavailable,
    }
    write_json(out / "study.json", summary)
    fig = rd_figure(list(curves.values()), metrics=["psnr-rgb", "lpips"])
    save_figure(fig, out / "rd.png")
    print(table(curves))
    print(json.dumps({"bd_rate_percent": summary["bd_rate_percent"],
                      "images_at_most_0.05_bpp_per_mask": summary["images_at_most_0.05_bpp_per_mask"]}, indent=1))
    print(f"wrote {out}/study.json, {out}/rd.png and one JSON per curve ({summary['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
