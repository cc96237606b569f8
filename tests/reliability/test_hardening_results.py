"""Issue 14, cases 9 and 10: hdc eval skips an oversized image like an unreadable one, and
results files, figures and BD tables fail with one line or do the right thing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image

from hdc_lightning.cli import main
from hdc_lightning.evaluation.bd import BDError, bd_rate, bd_table
from hdc_lightning.evaluation.plot import rd_figure
from hdc_lightning.evaluation.results import Curve, ResultsError, read_curve
from hdc_lightning.evaluation.runner import EvalOptions, run_eval
from tests.helpers.reliability import one_error

OPTS = dict(baselines=(), lpips=False, dists=False, ms_ssim=False, fid=False, progress=False)


def _write(tmp_path, name: str, obj) -> str:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def _curve(name, bpp, psnr):
    return Curve(name, {"bpp": list(bpp), "psnr-rgb": list(psnr)})


# ---- case 9 -----------------------------------------------------------------------------------
def test_eval_skips_an_oversized_image_and_still_writes_its_files(tmp_path, lic_ckpt, capsys):
    from hdc_lightning.codec.api import load_codec
    from hdc_lightning.codec.container import Limits

    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (48, 64), "b_wide.png": (48, 96), "c.png": (64, 48)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(data / name)
    summary = run_eval(
        [lic_ckpt],
        data,
        tmp_path / "out",
        opts=EvalOptions(tile=0, **OPTS),
        loader=lambda p: load_codec(p, limits=Limits(max_side=80)),
    )
    assert [s["name"] for s in summary.skipped] == ["b_wide.png"]
    assert "96x48" in summary.skipped[0]["reason"]  # width x height, as compress says it
    assert "skipped image b_wide.png" in capsys.readouterr().err
    per_image = json.loads((tmp_path / "out" / "per_image" / "hdc" / "lic-tiny-seed0.json").read_text())
    assert [r["name"] for r in per_image["images"]] == ["a.png", "c.png"]
    assert (tmp_path / "out" / "hdc.json").is_file() and (tmp_path / "out" / "rd.png").is_file()


# ---- case 10: reading results -------------------------------------------------------------
@pytest.mark.parametrize(
    "text, needle",
    [
        ('{"results": {"bpp": 0.3, "psnr-rgb": 31}}', "must be a list"),
        ('{"results": {"bpp": [0.3], "psnr-rgb": 31}}', "must be a list"),
        ('{"results": {"bpp": [0.1, 0.2], "psnr-rgb": [NaN, 30]}}', "NaN is not a JSON number"),
        ('{"results": {"bpp": [0.1, Infinity], "psnr-rgb": [29, 30]}}', "Infinity is not a JSON number"),
        ('{"results": {"bpp": [0.1, 0.2], "psnr-rgb": [1e999, 30]}}', "not a finite number"),
    ],
)
def test_malformed_results_are_one_line_errors(tmp_path, capsys, text, needle):
    path = _write(tmp_path, "r.json", text)
    with pytest.raises(ResultsError, match=needle):
        read_curve(path)
    one_error(["plot", path, "-o", tmp_path / "f.png"], capsys, needle)


def _one_image_folder(tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(data / "a.png")
    return data


def test_an_anchor_that_cannot_give_bd_is_refused_before_coding(tmp_path, lic_ckpt):
    loads, data = [], _one_image_folder(tmp_path)
    one_point = _write(tmp_path, "one.json", {"results": {"bpp": [0.5], "psnr-rgb": [30.0]}})
    nan = _write(tmp_path, "nan.json", '{"results": {"bpp": [0.1, 0.2], "psnr-rgb": [NaN, 30]}}')
    for anchor, error in ((one_point, BDError), (nan, ResultsError)):
        with pytest.raises(error):
            run_eval(
                [lic_ckpt],
                data,
                tmp_path / "out",
                anchor=anchor,
                opts=EvalOptions(**OPTS),
                loader=lambda p: loads.append(p),
            )
    assert not loads and not (tmp_path / "out").exists()


def test_eval_refuses_to_write_over_its_anchor(tmp_path, lic_ckpt, capsys):
    anchor = _write(tmp_path, "jpeg.json", {"results": {"bpp": [0.2, 0.5], "psnr-rgb": [28.0, 31.0]}})
    before = open(anchor).read()
    one_error(
        [
            "eval",
            lic_ckpt,
            "--data",
            _one_image_folder(tmp_path),
            "-o",
            tmp_path,
            "--baselines",
            "jpeg",
            "--anchor",
            anchor,
            "--no-lpips",
            "--no-dists",
            "--no-fid",
            "--no-progress",
        ],
        capsys,
        "writes that very file",
    )
    assert open(anchor).read() == before


def test_ms_ssim_in_db_is_read_and_points_are_sorted(tmp_path):
    path = _write(
        tmp_path, "pub.json", {"name": "pub", "results": {"bpp": [0.4, 0.1, 0.2], "ms-ssim-db-rgb": [16.0, 10.0, 13.0]}}
    )
    curve = read_curve(path)
    assert curve.results["bpp"] == [0.1, 0.2, 0.4]
    assert curve.results["ms-ssim-db-rgb"] == [10.0, 13.0, 16.0]
    assert curve.results["ms-ssim-rgb"] == pytest.approx([1 - 10 ** (-v / 10) for v in (10.0, 13.0, 16.0)])
    ours = Curve("ours", {"bpp": [0.1, 0.2, 0.4], "ms-ssim-rgb": [0.91, 0.95, 0.975]})
    assert "bd-rate[ms-ssim-rgb]" in bd_table([ours], curve)["curves"]["ours"]


# ---- case 10: figures -------------------------------------------------------------------------
def test_plot_output_path_errors_are_one_line(tmp_path, capsys):
    res = _write(tmp_path, "a.json", {"results": {"bpp": [0.1, 0.2], "psnr-rgb": [29.0, 31.0]}})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error(["plot", res, "-o", blocker / "x.png"], capsys, "is a file, not a folder")  # not "File exists"
    one_error(["plot", res, "-o", tmp_path / "fig.xyz"], capsys, ".png, .pdf, .svg")
    one_error(["plot", res, "-o", tmp_path / "fig"], capsys, ".png, .pdf, .svg")
    assert not (tmp_path / "fig.png").exists()
    before = open(res).read()
    one_error(["plot", res, "-o", res], capsys, ".png, .pdf, .svg")  # a results file is never a figure name
    assert open(res).read() == before
    assert main(["plot", res, "-o", str(tmp_path / "fig.svg"), "--metric", "psnr-rgb"]) == 0
    assert main(["plot", res, "-o", str(tmp_path / "fig.svg")]) == 0  # its own figure: replaced without --force


def test_classical_curves_dashed_and_colours_never_repeat():
    names = ["hdc", "VTM", "BPG 8b 444 x265 ycbcr", "JPEG2000", "jpeg", "JPEG AI"] + [f"model{i}" for i in range(8)]
    curves = [_curve(n, [0.1, 0.2], [29 + i, 30 + i]) for i, n in enumerate(names)]
    ax = rd_figure(curves, ["psnr-rgb"]).axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    dashed = {n for n, ln in lines.items() if ln.get_linestyle() == "--"}
    assert dashed == {"VTM", "BPG 8b 444 x265 ycbcr", "JPEG2000", "jpeg"}
    assert len({to_hex(ln.get_color()) for ln in lines.values()}) == len(names)


def test_ms_ssim_db_is_a_plot_option(tmp_path, capsys):
    res = _write(tmp_path, "a.json", {"results": {"bpp": [0.1, 0.2], "ms-ssim-rgb": [0.9, 0.95]}})
    assert main(["plot", res, "-o", str(tmp_path / "db.png"), "--metric", "ms-ssim-db-rgb"]) == 0
    ax = rd_figure([read_curve(res)], ["ms-ssim-db-rgb"]).axes[0]
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([10.0, -10 * math.log10(0.05)])


# ---- case 10: BD ----------------------------------------------------------------------------
def test_bd_rate_on_a_string_is_a_bd_error():
    with pytest.raises(BDError, match="lists of numbers"):
        bd_rate([0.1, "a"], [30, 31], [0.1, 0.2], [30, 31])


def test_bd_quality_is_kept_when_bd_rate_fails_and_intervals_are_recorded():
    anchor = _curve("anchor", [0.25, 0.5, 1.0], [30.0, 31.0, 32.0])
    disjoint = _curve("better", [0.25, 0.5, 1.0], [33.0, 34.0, 35.0])  # no shared PSNR range
    half = _curve("half", [0.5, 1.0, 2.0], [31.0, 32.0, 33.0])
    rows = bd_table([disjoint, half], anchor)["curves"]
    assert "error[psnr-rgb]" in rows["better"] and rows["better"]["bd-psnr"] == pytest.approx(3.0)
    assert rows["better"]["bd-psnr.interval"] == pytest.approx([0.25, 1.0])
    row = rows["half"]
    assert row["bd-rate[psnr-rgb].interval"] == pytest.approx([31.0, 32.0])
    assert row["bd-rate[psnr-rgb].overlap"] == pytest.approx(0.5)
    assert row["bd-psnr.interval"] == pytest.approx([0.5, 1.0]) and row["bd-psnr.overlap"] == pytest.approx(0.5)
