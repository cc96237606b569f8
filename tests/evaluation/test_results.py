"""CompressAI results JSON: round trip, aggregation, validation errors."""

import json

import pytest

from hdc_lightning.evaluation.results import (
    ResultsError,
    aggregate,
    curve_from_points,
    expand_paths,
    read_curve,
    write_curve,
    write_per_image,
)


def test_round_trip_sorted_by_bpp_and_keys_only_when_every_point_has_them(tmp_path):
    points = [
        {"bpp": 0.4, "psnr-rgb": 31.0, "ms-ssim-rgb": 0.97, "lpips": 0.1},
        {"bpp": 0.1, "psnr-rgb": 27.0, "ms-ssim-rgb": 0.90},
    ]
    curve = curve_from_points("mine", points, "desc", {"points": ["hi", "lo"]})
    path = write_curve(tmp_path / "mine.json", curve)
    obj = json.loads(path.read_text())
    assert obj["name"] == "mine" and obj["description"] == "desc"
    assert obj["results"] == {"bpp": [0.1, 0.4], "psnr-rgb": [27.0, 31.0], "ms-ssim-rgb": [0.90, 0.97]}
    assert obj["meta"]["points"] == ["lo", "hi"]
    back = read_curve(path)
    assert back.name == "mine" and back.results == obj["results"] and not back.has("lpips")


def test_aggregate_is_the_mean_and_drops_incomplete_metrics():
    recs = [{"bpp": 0.1, "psnr-rgb": 30.0, "ms-ssim-rgb": None}, {"bpp": 0.3, "psnr-rgb": 32.0, "ms-ssim-rgb": 0.9}]
    assert aggregate(recs) == pytest.approx({"bpp": 0.2, "psnr-rgb": 31.0})


def test_per_image_file(tmp_path):
    recs = [{"name": "a.png", "bpp": 0.5, "psnr-rgb": float("inf")}]
    path = write_per_image(
        tmp_path / "p" / "x.json", "c", recs, [{"name": "bad.png", "reason": "truncated"}], tile=None
    )
    obj = json.loads(path.read_text())
    assert obj["images"][0]["psnr-rgb"] is None  # non-finite → null, the file stays valid JSON
    assert obj["skipped"][0]["name"] == "bad.png" and obj["tile"] is None


def test_old_compressai_key_names_are_accepted(tmp_path):
    p = tmp_path / "old.json"
    p.write_text(json.dumps({"name": "bpg", "results": {"bpp": [0.1, 0.2], "psnr": [28, 30], "ms-ssim": [0.9, 0.95]}}))
    c = read_curve(p)
    assert c.results["psnr-rgb"] == [28.0, 30.0] and c.has("ms-ssim-rgb")


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON (line 1"),
        ("[1, 2]", "top level must be a JSON object"),
        ('{"name": "x"}', "has no 'results' object"),
        ('{"results": {"psnr-rgb": [1]}}', "no 'bpp' list"),
        ('{"results": {"bpp": [0.1, 0.2], "psnr-rgb": [30]}}', "has 1 entries but 'bpp' has 2"),
        ('{"results": {"bpp": [0.1, "x"]}}', "results['bpp'][1] is 'x', not a number"),
        ('{"results": {"bpp": []}}', "is empty"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path, text, message):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(ResultsError) as e:
        read_curve(p)
    assert str(e.value).startswith(str(p)) and message in str(e.value) and "\n" not in str(e.value)


def test_missing_file_and_folder_expansion(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        read_curve(tmp_path / "nope.json")
    write_curve(tmp_path / "a.json", curve_from_points("a", [{"bpp": 0.1}]))
    (tmp_path / "other.json").write_text('{"x": 1}')
    assert expand_paths([tmp_path]) == [tmp_path / "a.json"]
    with pytest.raises(ResultsError, match="holds no results"):
        expand_paths([tmp_path / "empty"] if (tmp_path / "empty").mkdir() is None else [])
