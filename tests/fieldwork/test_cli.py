"""The field sub-commands: zero-report status / reminders, and a township's cards to a PDF."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pypdf import PdfReader
from typer.testing import CliRunner

from geowarn.cli import app
from geowarn.db import Database
from tests.api.apiworld import COUNTY, TOWN_A, TOWN_B, World


def test_zero_reports_command(db: Database, world: World) -> None:
    r = CliRunner().invoke(app, ["zero-reports", "--unit", COUNTY, "--date", "2026-07-01"])
    assert r.exit_code == 0, r.output
    status = json.loads(r.stdout)
    assert status["townships"] == 2 and {m["code"] for m in status["missing"]} == {TOWN_A, TOWN_B}
    r = CliRunner().invoke(app, ["zero-reports", "--unit", COUNTY, "--reminders"])
    assert r.exit_code == 0, r.output
    assert isinstance(json.loads(r.stdout), list)


def test_cards_command(db: Database, world: World, tmp_path: Path) -> None:
    out = tmp_path / "cards.pdf"
    r = CliRunner().invoke(app, ["cards", TOWN_A, "--out", str(out), "--kind", "sites"])
    assert r.exit_code == 0, r.output
    text = (PdfReader(io.BytesIO(out.read_bytes())).pages[0].extract_text() or "").replace("\x00", "")
    assert "ALPHA" in text and "明" in text
