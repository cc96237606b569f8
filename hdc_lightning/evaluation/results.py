"""Results files in CompressAI's schema, and per-image records.

Aggregate file (one per curve, one list entry per rate point, sorted by bpp)::

    {"name": "hdc-tiny", "description": "...",
     "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb": [...], "lpips": [...]},
     "meta": {...}}                       # optional extras, ignored by other readers

A metric key is written only when every rate point has it (e.g. no ``lpips`` list when
the LPIPS weights were absent). Per-image files hold one record per image for one rate
point, so any aggregate can be recomputed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdc_lightning.errors import DataError
from hdc_lightning.fileio import write_text

# Keys averaged over images for each rate point (CompressAI names first).
IMAGE_METRICS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "lpips", "dists", "encoding_time", "decoding_time")
# Keys computed over a whole set (not averaged per image).
SET_METRICS = ("fid", "kid")
ALIASES = {"psnr": "psnr-rgb", "ms-ssim": "ms-ssim-rgb", "ms-ssim-db": "ms-ssim-db-rgb"}
# Metric keys that must be lists when present (a scalar there is a malformed file, not an extra).
CURVE_KEYS = frozenset({*IMAGE_METRICS, *SET_METRICS, "ms-ssim-db-rgb"})
LOWER_IS_BETTER = frozenset({"bpp", "lpips", "dists", "fid", "kid", "kid-vgg16", "encoding_time", "decoding_time"})


class ResultsError(DataError):
    """A results JSON is unreadable or does not follow the schema."""


@dataclass
class Curve:
    """One RD curve: a name and metric lists aligned with ``results['bpp']``."""

    name: str
    results: dict[str, list[float]]
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.results.get("bpp", []))

    def values(self, key: str) -> list[float] | None:
        """``results[key]``, or None; MS-SSIM in dB is derived from ``ms-ssim-rgb`` when absent."""
        if key in self.results and len(self.results[key]) == len(self):
            return self.results[key]
        if key == "ms-ssim-db-rgb" and self.has("ms-ssim-rgb") and all(v < 1 for v in self.results["ms-ssim-rgb"]):
            return [ms_ssim_db(v) for v in self.results["ms-ssim-rgb"]]
        return None

    def has(self, key: str) -> bool:
        return self.values(key) is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description, "results": self.results}
        if self.meta:
            out["meta"] = self.meta
        return out


def aggregate(records: Sequence[Mapping[str, Any]], keys: Iterable[str] = IMAGE_METRICS) -> dict[str, float]:
    """Mean of each key over the records; a key missing or ``None`` in any record is left out."""
    out: dict[str, float] = {}
    if not records:
        return out
    for key in keys:
        values = [r.get(key) for r in records]
        if all(_is_number(v) for v in values):
            out[key] = float(sum(values) / len(values))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def curve_from_points(
    name: str, points: Sequence[Mapping[str, float]], description: str = "", meta: Mapping[str, Any] | None = None
) -> Curve:
    """Build a curve from per-rate-point metric dicts (sorted by bpp; keys kept only if all have them)."""
    order = sorted(range(len(points)), key=lambda i: points[i]["bpp"])
    known = [*IMAGE_METRICS, *SET_METRICS]
    extra = sorted({k for p in points for k in p} - set(known))
    keys = [k for k in known + extra if all(_is_number(p.get(k)) for p in points)]
    results = {k: [float(points[i][k]) for i in order] for k in keys}
    meta = dict(meta or {})
    for k, v in list(meta.items()):  # per-point meta lists follow the same order
        if isinstance(v, list) and len(v) == len(points):
            meta[k] = [v[i] for i in order]
    return Curve(name=name, results=results, description=description, meta=meta)


def _json_safe(obj: Any) -> Any:
    """NaN/inf are not JSON: they become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> Path:
    """Write JSON whole or not at all (:func:`hdc_lightning.fileio.write_text`)."""
    return write_text(path, json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n")


def write_curve(path: str | Path, curve: Curve) -> Path:
    path = Path(path)
    write_json(path, curve.to_json())
    curve.path = path
    return path


def write_per_image(
    path: str | Path,
    name: str,
    records: Sequence[Mapping[str, Any]],
    skipped: Sequence[Mapping[str, str]] = (),
    **meta: Any,
) -> Path:
    """One rate point's per-image records plus their aggregate."""
    path = Path(path)
    obj = {"name": name, **meta, "aggregate": aggregate(records), "images": list(records), "skipped": list(skipped)}
    write_json(path, obj)
    return path


def _bad(path: Path, problem: str) -> ResultsError:
    return ResultsError(f"{path}: {problem}")


def _number_list(path: Path, key: str, value: Any) -> list[float]:
    if not isinstance(value, list):
        raise _bad(path, f"results['{key}'] must be a list of numbers, got {type(value).__name__}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _bad(path, f"results['{key}'][{i}] is {v!r}, not a number")
        if not math.isfinite(v):
            raise _bad(path, f"results['{key}'][{i}] is {v}, not a finite number")
        out.append(float(v))
    return out


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in decibels, ``-10 log10(1 - ms-ssim)``, as CompressAI's published files give it."""
    return -10.0 * math.log10(1.0 - value)


def _add_ms_ssim_fraction(lists: dict[str, list[float]]) -> None:
    """CompressAI's published MS-SSIM files give it only in dB: derive the fraction too."""
    if "ms-ssim-db-rgb" in lists and "ms-ssim-rgb" not in lists:
        lists["ms-ssim-rgb"] = [1.0 - 10.0 ** (-v / 10.0) for v in lists["ms-ssim-db-rgb"]]


def parse_curve(obj: Any, path: Path) -> Curve:
    """Validate a decoded results object (CompressAI schema, old key names accepted).

    Points come back sorted by bpp, whatever order the file lists them in.
    """
    if not isinstance(obj, dict):
        raise _bad(path, f"top level must be a JSON object, got {type(obj).__name__}")
    results = obj.get("results")
    if not isinstance(results, dict):
        raise _bad(path, "has no 'results' object (expected CompressAI schema {name, description, results})")
    if "bpp" not in results:
        raise _bad(path, "results has no 'bpp' list")
    lists: dict[str, list[float]] = {}
    for key, value in results.items():
        key = ALIASES.get(key, key)
        if not isinstance(value, list) and key not in CURVE_KEYS:
            continue  # scalars/extra objects some tools add are not curves
        lists[key] = _number_list(path, key, value)
    n = len(lists["bpp"])
    if n == 0:
        raise _bad(path, "results['bpp'] is empty")
    for key, values in lists.items():
        if len(values) != n:
            raise _bad(path, f"results['{key}'] has {len(values)} entries but 'bpp' has {n}")
    _add_ms_ssim_fraction(lists)
    order = sorted(range(n), key=lambda i: lists["bpp"][i])
    lists = {k: [v[i] for i in order] for k, v in lists.items()}
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        name = path.stem
    description = obj.get("description") if isinstance(obj.get("description"), str) else ""
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    return Curve(name=name, results=lists, description=description, meta=meta, path=path)


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def load_json(path: Path) -> Any:
    """Strict JSON: NaN and Infinity (which Python's reader accepts) are refused."""
    return json.loads(path.read_text(), parse_constant=_no_constant)


def read_curve(path: str | Path) -> Curve:
    """Read and validate one results JSON; any problem is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise _bad(path, "results file not found")
    try:
        obj = load_json(path)
    except UnicodeDecodeError:
        raise _bad(path, "not a text file (expected a results JSON)") from None
    except json.JSONDecodeError as e:
        raise _bad(path, f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except ValueError as e:
        raise _bad(path, f"not valid JSON ({e})") from None
    except OSError as e:
        raise _bad(path, f"cannot be read ({e.strerror or e})") from None
    return parse_curve(obj, path)


def is_results_file(path: Path) -> bool:
    """Cheap check used when scanning folders: a JSON object with a 'results' key."""
    try:
        obj = load_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and isinstance(obj.get("results"), dict) and "bpp" in obj["results"]


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the results JSONs directly inside it (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = [f for f in sorted(p.glob("*.json")) if is_results_file(f)]
            if not found:
                raise ResultsError(f"{p}: folder holds no results JSON")
            out += found
        else:
            out.append(p)
    return out
