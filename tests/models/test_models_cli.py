"""``trading-agent models list | activate`` and the final-fit progress of ``train``, through the real CLI
(subprocesses) on a model really trained on real candles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.models.catboost_model import META_FILE, MODEL_FILE, CatBoostTradingModel
from engine.models.features import compute_features
from engine.models.labels import make_labels
from engine.models.registry import ModelRegistry
from tests.models.conftest import SMALL, TRAIN_FILE, real
from tests.sample import sample_path

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 40


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "MODELS_DIR"}
    base["PYTHONPATH"] = str(ROOT)  # the checkout's packages, from any working directory
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A models folder holding one model trained by ``trading-agent train`` (with its progress bars on)."""
    root = tmp_path_factory.mktemp("registry")
    done = cli("train", "--data", str(sample_path(TRAIN_FILE)), "--out", str(root / "ethbtc"), "--horizon", "6",
               "--folds", "2", "--iterations", str(ITERATIONS), "--depth", "4")
    assert done.returncode == 0, done.stderr
    return root, done


@pytest.fixture()
def registry(trained: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> Path:
    """A private copy of the trained registry that a test may change."""
    dst = tmp_path / "models"
    shutil.copytree(trained[0], dst)
    return dst


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_train_shows_progress_on_the_final_fit(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    err = trained[1].stderr
    assert "walk-forward" in err
    final = [part for part in err.replace("\r", "\n").splitlines() if part.startswith("final fit")]
    assert final and f"{ITERATIONS}/{ITERATIONS}" in final[-1] and "100%" in final[-1]
    assert f"0/{ITERATIONS}" in final[0]  # it starts at zero: the bar moves while the fit runs


def test_progress_does_not_change_the_model() -> None:
    ds = real()
    x = compute_features(ds.arrays)
    y = make_labels(ds.arrays.close, horizon=12, fee_bps=10.0)
    seen: list[int] = []
    quiet, counted = CatBoostTradingModel(SMALL), CatBoostTradingModel(SMALL)
    quiet.fit(x, y)
    counted.fit(x, y, progress=seen.append)
    assert len(seen) == SMALL.iterations
    np.testing.assert_array_equal(quiet.predict_proba(x[-500:]), counted.predict_proba(x[-500:]))


def test_list_shows_the_model_its_window_metrics_and_where_it_is_active(registry: Path) -> None:
    meta = json.loads((registry / "ethbtc" / META_FILE).read_text())
    overall = meta["metrics"]["overall"]
    done = cli("models", "list", "--models-dir", str(registry))
    assert done.returncode == 0, done.stderr
    head, line, note = done.stdout.splitlines()
    assert head.split() == ["id", "name", "symbol", "tf", "trained", "(UTC)", "candles", "auc", "acc/base", "%",
                            "strat/b&h", "%", "active", "for"]
    assert line.split() == ["ethbtc", "ethbtc", "ETH/BTC", "5m", "2018-01-10..2018-01-30",
                            f"{meta['training']['rows']:,}", f"{overall['auc']:.3f}",
                            f"{overall['accuracy'] * 100:.1f}/{overall['baseline_accuracy'] * 100:.1f}",
                            f"{overall['strategy_return'] * 100:+.2f}/{overall['buy_and_hold_return'] * 100:+.2f}",
                            "-"]
    assert note.startswith("(metrics: walk-forward, out of sample only")

    done = cli("models", "activate", "ethbtc", "--models-dir", str(registry))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"activated ethbtc for ETHBTC in {registry / 'active.json'}")
    assert json.loads((registry / "active.json").read_text()) == {"ETHBTC": "ethbtc"}
    assert not list(registry.glob("*.tmp"))
    loaded = ModelRegistry(registry).load_active("ETHBTC")  # what the worker does at start
    assert isinstance(loaded, CatBoostTradingModel) and loaded.name == "ethbtc"
    listed = cli("models", "list", env={"MODELS_DIR": str(registry)})  # MODELS_DIR without --models-dir
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[-1] == "ETHBTC"


def test_the_default_registry_is_models_in_the_working_directory(registry: Path) -> None:
    work = registry.parent
    done = cli("models", "activate", "ethbtc", cwd=work)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("activated ethbtc for ETHBTC in models/active.json")
    assert json.loads((registry / "active.json").read_text()) == {"ETHBTC": "ethbtc"}
    listed = cli("models", "list", cwd=work)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[-1] == "ETHBTC"


def test_activate_takes_the_symbol_in_any_spelling(registry: Path) -> None:
    done = cli("models", "activate", "ethbtc", "--symbol", "eth/btc", "--models-dir", str(registry))
    assert done.returncode == 0, done.stderr
    assert json.loads((registry / "active.json").read_text()) == {"ETHBTC": "ethbtc"}


def test_bad_ids_and_mismatched_symbols_are_one_line_exit_2_and_change_nothing(registry: Path) -> None:
    (registry / "active.json").write_text(json.dumps({"BTCUSDT": "ethbtc"}))
    before = (registry / "active.json").read_bytes()
    line = one_error_line(cli("models", "activate", "nope", "--models-dir", str(registry)))
    assert line == f"error: no model 'nope' in {registry} (models there: ethbtc)"
    line = one_error_line(cli("models", "activate", "ethbtc", "--symbol", "BTCUSDT", "--models-dir", str(registry)))
    assert line == "error: ethbtc does not fit BTCUSDT: the model was trained on ETH/BTC, not BTCUSDT"
    line = one_error_line(cli("models", "activate", "ethbtc", "--symbol", "//", "--models-dir", str(registry)))
    assert line == "error: --symbol '//' is not a symbol (like BTCUSDT)"
    assert (registry / "active.json").read_bytes() == before
    listed = cli("models", "list", "--models-dir", str(registry))  # a mapping the registry no longer fits is shown
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[-1] == "BTCUSDT"


def test_a_damaged_model_is_listed_with_the_reason_and_refused(registry: Path) -> None:
    model = registry / "ethbtc" / MODEL_FILE
    model.write_bytes(model.read_bytes()[:200])
    listed = cli("models", "list", "--models-dir", str(registry))
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[-1].startswith("ethbtc: cannot be loaded: model file truncated:")
    line = one_error_line(cli("models", "activate", "ethbtc", "--models-dir", str(registry)))
    assert line.startswith("error: model file truncated:")
    assert not (registry / "active.json").exists()


def test_a_model_of_several_symbols_needs_symbol(registry: Path) -> None:
    meta_path = registry / "ethbtc" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "symbol": "ETH/BTC,XRP/ETH"}))
    line = one_error_line(cli("models", "activate", "ethbtc", "--models-dir", str(registry)))
    assert line == "error: model ethbtc was trained on ETH/BTC, XRP/ETH; say which symbol it trades with --symbol"
    done = cli("models", "activate", "ethbtc", "--symbol", "XRPETH", "--models-dir", str(registry))
    assert done.returncode == 0 and json.loads((registry / "active.json").read_text()) == {"XRPETH": "ethbtc"}


def test_an_empty_or_missing_registry_says_how_to_fill_it(tmp_path: Path) -> None:
    done = cli("models", "list", "--models-dir", str(tmp_path / "absent"))
    assert done.returncode == 0
    assert done.stdout == (f"no models: {tmp_path / 'absent'} does not exist (train one: trading-agent train "
                           f"--data FILE --out {tmp_path / 'absent' / 'NAME'})\n")
    done = cli("models", "list", "--models-dir", str(tmp_path))
    assert done.returncode == 0 and done.stdout.startswith(f"no models in {tmp_path} (train one:")
    line = one_error_line(cli("models", "activate", "x", "--models-dir", str(tmp_path)))
    assert line == f"error: no model 'x' in {tmp_path} (models there: none)"
