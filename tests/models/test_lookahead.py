from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.core.model import CandleArrays, SmaCrossModel
from engine.models.catboost_model import CatBoostTradingModel
from engine.models.lookahead import check_lookahead
from tests.models.conftest import DATA_DIR, TRAIN_FILE


class LeakyModel(CatBoostTradingModel):
    """Deliberately broken: its ``ret_1`` feature is the NEXT candle's return (look-ahead)."""

    def features(self, candles: CandleArrays) -> np.ndarray:
        x = super().features(candles)
        nxt = np.full(len(candles), np.nan)
        nxt[:-1] = np.log(candles.close[1:] / candles.close[:-1])
        x[:, 0] = nxt
        return x


def test_shipped_features_and_model_are_causal(trained_dir: Path, eth_btc: CandleArrays) -> None:
    report = check_lookahead(eth_btc, CatBoostTradingModel.load(trained_dir))
    assert report.clean, report.summary()
    assert report.checked_values > 1_000_000
    assert len(report.cut_points) >= 20


def test_rule_model_is_causal(eth_btc: CandleArrays) -> None:
    assert check_lookahead(eth_btc, SmaCrossModel()).clean


def test_planted_leak_is_found(trained_dir: Path, eth_btc: CandleArrays) -> None:
    leaky = LeakyModel.load(trained_dir)
    report = check_lookahead(eth_btc, leaky)
    assert not report.clean
    leaked = {lk.column for lk in report.leaks if lk.kind == "feature"}
    assert leaked == {"ret_1"}
    # the leak shows at the last row of each truncated run: NaN there, the next return on full data
    cut = report.cut_points[0]
    hit = [lk for lk in report.leaks if lk.kind == "feature" and lk.cut == cut]
    assert [lk.row for lk in hit] == [cut - 1]
    assert np.isnan(hit[0].truncated_value)
    assert hit[0].full_value == pytest.approx(np.log(eth_btc.close[cut] / eth_btc.close[cut - 1]))
    assert "look-ahead" in report.summary() and "ret_1" in report.summary()


def test_cli_exit_codes(trained_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(DATA_DIR / TRAIN_FILE)
    assert main(["check-lookahead", "--data", data, "--model", str(trained_dir), "--cuts", "8"]) == 0
    assert "no look-ahead found" in capsys.readouterr().out
    assert main(["check-lookahead", "--data", data, "--model", str(tmp_path / "absent")]) == 2
    assert "model missing" in capsys.readouterr().err
