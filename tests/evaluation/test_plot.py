"""`hdc plot`: figures from results JSONs, and its one-line errors."""

from hdc_lightning.cli import main
from hdc_lightning.evaluation.plot import default_metrics, rd_figure
from hdc_lightning.evaluation.results import Curve, curve_from_points, read_curve, write_curve

PNG = b"\x89PNG\r\n\x1a\n"


def _write(tmp_path, name, with_lpips):
    pts = [
        {
            "bpp": b,
            "psnr-rgb": 25 + 10 * b,
            "ms-ssim-rgb": 0.8 + 0.1 * b,
            **({"lpips": 0.3 - 0.2 * b} if with_lpips else {}),
        }
        for b in (0.05, 0.1, 0.3)
    ]
    return write_curve(tmp_path / f"{name}.json", curve_from_points(name, pts))


def test_hdc_plot_writes_a_png(tmp_path, capsys):
    a, b = _write(tmp_path, "hdc", True), _write(tmp_path, "jpeg", False)
    out = tmp_path / "figs" / "rd.png"
    assert main(["plot", str(a), str(b), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 5000
    assert main(["plot", str(tmp_path), "-o", str(tmp_path / "ms.png"), "--metric", "ms-ssim-rgb"]) == 0
    assert (tmp_path / "ms.png").read_bytes()[:8] == PNG


def test_default_panels_fall_back_to_ms_ssim_without_lpips(tmp_path):
    curves = [Curve("x", {"bpp": [0.1, 0.2], "psnr-rgb": [28, 30], "ms-ssim-rgb": [0.9, 0.95]})]
    assert default_metrics(curves) == ["psnr-rgb", "ms-ssim-rgb"]
    curves.append(Curve("y", {"bpp": [0.1], "psnr-rgb": [29], "lpips": [0.2]}))
    assert default_metrics(curves) == ["psnr-rgb", "lpips"]
    assert len(rd_figure(curves).axes) == 2


def test_bad_results_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [1]}')
    assert main(["plot", str(bad), "-o", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hdc plot: error:") and str(bad) in err and "not valid JSON" in err and "\n" not in err
    good = _write(tmp_path, "g", False)
    assert main(["plot", str(good), "-o", str(tmp_path / "f.png"), "--metric", "lpips"]) == 2
    assert "has 'lpips'" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()


def test_realism_curve_adds_a_perception_distortion_panel(tmp_path):
    """An `hdc eval --realism` curve sits at one bpp (a vertical line on the rate axes), so the
    figure adds a PSNR-vs-LPIPS panel; written to JSON and read back, the panel is still there."""
    pts = [{"bpp": 0.09, "psnr-rgb": 24 - 8 * a, "lpips": 0.52 - 0.1 * a * (1 - a)} for a in (0, 0.5, 1)]
    rd = curve_from_points("jpeg", [{"bpp": b, "psnr-rgb": 20 + b, "lpips": 0.6} for b in (0.1, 0.2)])
    real = curve_from_points("A", pts, meta={"realism": [0.0, 0.5, 1.0]})
    assert len(rd_figure([rd]).axes) == 2
    fig = rd_figure([rd, real])
    assert len(fig.axes) == 3
    pd = fig.axes[2]
    assert pd.get_xlabel().startswith("PSNR") and pd.get_ylabel().startswith("LPIPS")
    assert [t.get_text() for t in pd.texts] == ["A=0", "A=0.5", "A=1"]
    out, path = tmp_path / "pd.png", write_curve(tmp_path / "A.json", real)
    assert len(rd_figure([read_curve(path)]).axes) == 3
    assert main(["plot", str(path), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
    assert len(rd_figure([rd, real], metrics=["psnr-rgb"]).axes) == 1  # no perceptual metric asked: no panel


def test_the_perception_axis_is_a_realism_metric_when_the_curve_has_one():
    """PSNR against kid-vgg16 (a distance between distributions), with LPIPS in its own panel."""
    pts = [{"bpp": 0.08, "psnr-rgb": 24.5 - a, "lpips": 0.43 - 0.01 * a, "kid-vgg16": 0.09 - 0.01 * a} for a in (0, 1)]
    fig = rd_figure([curve_from_points("A", pts, meta={"realism": [0.0, 1.0]})], metrics=["psnr-rgb", "lpips"])
    assert [ax.get_ylabel().split(" ")[0] for ax in fig.axes] == ["PSNR", "LPIPS", "kid-vgg16"]
    assert fig.axes[2].get_xlabel().startswith("PSNR")
