"""Fixtures of the reliability suite; prints the fuzz outcome counts at the end of the session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.models import random_init_checkpoint
from tests.helpers.reliability import FUZZ_REPORTS, write_fuzz_reports


@pytest.fixture(scope="session")
def lic_ckpt(tmp_path_factory) -> Path:
    """A randomly initialised tiny LIC model, as a checkpoint ``load_codec`` reads."""
    return random_init_checkpoint(tmp_path_factory.mktemp("ckpt") / "lic-tiny-seed0.ckpt")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not FUZZ_REPORTS:
        return
    tr = terminalreporter
    tr.section("bitstream fuzz outcomes")
    for rep in FUZZ_REPORTS:
        tr.write_line(
            f"{rep['target']}: {rep['cases']} cases, {rep['clean_decodes']} clean decodes, "
            f"{rep['errors']} BitstreamErrors, {rep['failures']} failures, "
            f"slowest case {rep['max_case_seconds']} s"
            + (
                f", peak {rep['max_case_peak_mib']} MiB (bound {rep.get('peak_bound_mib')} MiB)"
                if "max_case_peak_mib" in rep
                else ""
            )
        )
        for cat, n in rep["error_categories"].items():
            tr.write_line(f"    {n:6d}  {cat}")
    path = os.environ.get("HDC_FUZZ_REPORT")
    if path:
        write_fuzz_reports(path)
        tr.write_line(f"fuzz report written to {path}")
