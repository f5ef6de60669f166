"""Where the tests find real candles: the sample shipped in the repository (``data/sample/``).

``../shared/data`` (beside a checkout) is an optional larger set: tests that can use it do so in addition,
never instead, so a clone without it runs every test.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
SHARED = ROOT.parent / "shared" / "data"


def sample_path(name: str) -> Path:
    """A file of the shipped sample; a missing one is a broken checkout, so it fails, never skips."""
    path = SAMPLE / name
    assert path.is_file(), f"sample candle file {path} is missing from the checkout"
    return path


def shared_files() -> list[Path]:
    """The optional larger set's CSV files, or none."""
    return sorted(SHARED.glob("*.csv")) if SHARED.is_dir() else []
