"""The command line of strategies, through the real console entry on the shipped sample candles: ``backtest
--strategy`` (built-ins, a user's file, parameters from flags and the config), the side-by-side comparison,
``check-lookahead --strategy``, ``new-strategy`` and ``strategies``; every bad strategy file or parameter is one
line and exit code 2."""

from __future__ import annotations

import argparse
import json
import re
import struct
import textwrap
from pathlib import Path

import pytest

from engine.backtest_cli import dumps_results
from engine.cli import command, main
from engine.feeds.candle_file import iso_utc, load_candles
from tests.cli.common import ROOT, SOME_ROWS, cli, csv_text, one_line_error
from tests.sample import sample_path

DATA = sample_path("BTC_USDT-5m.csv")  # 10,999 real 5m candles
HOURLY = sample_path("BTC_USD-1h.csv")  # 4,000 real 1h candles

USER = '''\
"""A user's strategy: EMA trend with an RSI filter."""
from engine.strategy import FloatParam, IntParam, Strategy, ema, rsi


class EmaRsi(Strategy):
    """Long while the fast EMA is above the slow one and the RSI is not overbought."""

    timeframe = "5m"
    startup_candles = 60
    stoploss = -0.04
    fast = IntParam(5, 50, default=12)
    slow = IntParam(20, 200, default=26)
    rsi_max = FloatParam(50, 90, default=70)

    def populate_indicators(self, df):
        df["ema_fast"] = ema(df["close"], self.fast)
        df["ema_slow"] = ema(df["close"], self.slow)
        df["rsi"] = rsi(df["close"], 14)
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = ((df["ema_fast"] > df["ema_slow"]) & (df["rsi"] < self.rsi_max)).astype(int)
        df["enter_tag"] = "ema_up"
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["ema_fast"] < df["ema_slow"]).astype(int)
        return df
'''

LEAKY = '''\
from engine.strategy import Strategy


class Peeks(Strategy):
    startup_candles = 30

    def populate_indicators(self, df):
        df["next_close"] = df["close"].shift(-1)  # the planted leak: tomorrow's close today
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = (df["next_close"] > df["close"] * 1.002).astype(int)
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["next_close"] < df["close"] * 0.998).astype(int)
        return df
'''


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``trading-agent ARGV`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def metric_cells(report: str, label: str) -> list[str]:
    """The cells of a metric row of a report or comparison table (``-3.73 %`` counts as one)."""
    line = next(ln for ln in report.splitlines() if ln.startswith(f"  {label}  "))
    return re.findall(r"[-+]?[\d,.]+(?: %)?|n/a|inf", line[len(label) + 2:])


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- backtest --strategy -------------------------------------------------------------------------------------


def test_a_user_strategy_file_backtests_with_its_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    path = write(tmp_path, "ema_rsi.py", USER.replace("stoploss = -0.04", "stoploss = -0.01"))

    code, out, err = run(capsys, "backtest", "--data", DATA, "--strategy", f"{path}:EmaRsi", "--param", "fast=8",
                         "--json", tmp_path / "bt.json")

    assert (code, err) == (0, ""), err
    assert out.startswith("Backtest BTCUSDT · EmaRsi(fast=8,slow=26,rsi_max=70.0) · 10,999 candles\n")
    doc = json.loads((tmp_path / "bt.json").read_text())
    assert doc["model"] == "EmaRsi(fast=8,slow=26,rsi_max=70.0)" and doc["warnings"] == []
    assert doc["metrics"]["trades"] == len(doc["trades"]) > 20
    assert metric_cells(out, "Trades") == [str(len(doc["trades"]))]
    # its own stop (1 %) replaced the config's 5 % (which no trade of this rule on these candles reaches)
    stops = [t["exit_price"] / t["entry_price"] for t in doc["trades"] if t["exit_reason"] == "stop_loss"]
    assert stops and all(r == pytest.approx(0.99, abs=1e-3) for r in stops), stops
    # the class alone (the file defines one strategy) is the same run; another parameter is another run
    again = run(capsys, "backtest", "--data", DATA, "--strategy", str(path), "--param", "fast=8")
    assert again == (0, out.replace(f"\nJSON written to {tmp_path / 'bt.json'}\n", ""), "")
    other = run(capsys, "backtest", "--data", DATA, "--strategy", str(path), "--param", "fast=20")
    assert metric_cells(other[1], "Final equity") != metric_cells(out, "Final equity")


def test_sma_cross_as_a_strategy_is_the_fast_path_bit_for_bit(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    plain = run(capsys, "backtest", "--data", DATA, "--fast", "8", "--json", tmp_path / "a.json")
    # --param goes through the strategy layer (ranges, fast < slow) and lands on the same SmaCrossModel
    param = run(capsys, "backtest", "--data", DATA, "--strategy", "sma-cross", "--param", "fast=8",
                "--json", tmp_path / "b.json")

    assert plain[0] == param[0] == 0
    assert plain[1].replace("a.json", "b.json") == param[1]
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert param[1].startswith("Backtest BTCUSDT · sma-cross(8,30) · ")


def test_the_config_names_the_strategy_and_its_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    config = tmp_path / "trading.toml"
    config.write_text('[trading]\nstrategy = "rsi-mean-reversion"\n\n[strategy.params]\nperiod = 10\n'
                      "oversold = 25.0\n")

    code, out, _ = run(capsys, "backtest", "--data", DATA, "--config", config)
    assert code == 0 and "· rsi-mean-reversion(period=10,oversold=25.0,exit_above=55.0) ·" in out.splitlines()[0]
    # --param over the table; the table belongs to the config's strategy, not to another one asked for
    code, out, _ = run(capsys, "backtest", "--data", DATA, "--config", config, "--param", "period=12")
    assert code == 0 and "rsi-mean-reversion(period=12,oversold=25.0,exit_above=55.0)" in out
    code, out, _ = run(capsys, "backtest", "--data", DATA, "--config", config, "--strategy", "bollinger-breakout")
    assert code == 0 and "bollinger-breakout(window=20,k=2.0)" in out
    config.write_text('[trading]\nstrategy = "rsi-mean-reversion"\n\n[strategy.params]\nperiods = 10\n')
    code, out, err = run(capsys, "backtest", "--data", DATA, "--config", config)
    assert (code, out) == (2, "")
    assert err == (f"error: trading config {config}: [strategy.params] rsi-mean-reversion: unknown parameter "
                   "'periods' (did you mean 'period'? parameters: period (2..50), oversold (5..50), exit_above "
                   "(30..95))\n")


def test_a_strategy_written_for_other_candles_is_warned_in_the_report(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ema_rsi.py", USER)

    code, out, err = run(capsys, "backtest", "--data", HOURLY, "--strategy", path, "--json", tmp_path / "bt.json")

    assert (code, err) == (0, "")
    warning = ("EmaRsi is written for 5m candles; BTC_USD-1h.csv holds 1h candles (its indicators' periods mean "
               "other spans of time)")
    assert out.splitlines()[1] == f"  warning: {warning}"
    assert json.loads((tmp_path / "bt.json").read_text())["warnings"] == [warning]
    # sma-cross declares no timeframe: no warning
    assert "warning" not in run(capsys, "backtest", "--data", HOURLY, "--strategy", "sma-cross")[1]


# --- compare ------------------------------------------------------------------------------------------------


def test_compare_prints_one_table_a_column_per_strategy_and_one_chart(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ema_rsi.py", USER)
    specs = ["sma-cross", "rsi-mean-reversion", f"{path}:EmaRsi"]

    code, out, err = run(capsys, "backtest", "--data", DATA, *(a for s in specs for a in ("--strategy", s)),
                         "--chart", tmp_path / "cmp.png", "--json", tmp_path / "cmp.json")

    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    assert lines[0] == "Compare BTCUSDT · 10,999 candles · 3 strategies"
    assert sum(ln.startswith("  Total return") for ln in lines) == 1  # one table
    for label in ("Total return", "Sharpe", "Max drawdown", "Trades", "Final equity", "Buy & hold return"):
        assert len(metric_cells(out, label)) == 3, label
    heading = " ".join(lines[2:lines.index(next(ln for ln in lines if ln.startswith("  Total return")))])
    for name in ("sma-cross(10,30)", "rsi-mean-reversion(", "exit_above=55.0)", "EmaRsi(fast=12,", "rsi_max=70.0)"):
        assert name in heading, name
    docs = json.loads((tmp_path / "cmp.json").read_text())
    assert [d["model"] for d in docs] == ["sma-cross(10,30)", "rsi-mean-reversion(period=14,oversold=30.0,"
                                          "exit_above=55.0)", "EmaRsi(fast=12,slow=26,rsi_max=70.0)"]
    assert metric_cells(out, "Trades") == [str(len(d["trades"])) for d in docs]
    # each column is that strategy's own backtest
    for spec, cell in zip(specs, metric_cells(out, "Final equity"), strict=True):
        single = run(capsys, "backtest", "--data", DATA, "--strategy", spec)[1]
        assert metric_cells(single, "Final equity") == [cell]
    width, height = png_size((tmp_path / "cmp.png").read_bytes())
    assert width > 600 and height > 400
    assert out.endswith(f"Equity chart written to {tmp_path / 'cmp.png'}\n")


def test_param_applies_to_each_strategy_declaring_it_or_to_the_numbered_one(capsys: pytest.CaptureFixture[str]
                                                                          ) -> None:
    code, out, _ = run(capsys, "backtest", "--data", DATA, "--strategy", "sma-cross", "--strategy", "sma-cross",
                       "--strategy", "bollinger-breakout", "--param", "slow=40", "--param", "2:fast=5",
                       "--param", "window=30")
    assert code == 0
    docs_heading = "\n".join(out.splitlines()[:8])
    for name in ("sma-cross(10,40)", "sma-cross(5,40)", "window=30,"):
        assert name in docs_heading, name
    assert len(metric_cells(out, "Trades")) == 3

    code, out, err = run(capsys, "backtest", "--data", DATA, "--strategy", "sma-cross", "--strategy",
                         "rsi-mean-reversion", "--param", "perod=3")
    assert (code, out) == (2, "")
    assert err == ("error: --param perod=3: no strategy given declares 'perod' (did you mean 'period' or "
                   "'oversold'? sma-cross: fast, slow; rsi-mean-reversion: period, oversold, exit_above)\n")


def test_the_compare_json_is_json_dumps_of_the_list() -> None:
    docs: list[dict[str, object]] = [{"a": 1, "trades": [{"x": 1.5, "y": None}]}, {"b": "z", "trades": []}]
    assert dumps_results(docs) == json.dumps(docs, indent=2)


# --- check-lookahead --strategy ------------------------------------------------------------------------------


@pytest.fixture
def short_csv(tmp_path: Path) -> Path:
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(csv_text(SOME_ROWS))  # the sample's first 2,000 candles
    return path


def test_check_lookahead_names_the_planted_leak_and_its_first_candle(tmp_path: Path, short_csv: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "peeks.py", LEAKY)

    code, out, err = run(capsys, "check-lookahead", "--strategy", f"{path}:Peeks", "--data", short_csv)

    assert (code, err) == (1, "")
    ts = load_candles(short_csv).arrays.ts
    # the shortest truncated run ends after startup_candles (30): candle 30 is the first to differ
    when = iso_utc(int(ts[30])).replace("T", " ")[:16]
    assert re.search(rf"column 'next_close' looks ahead: first at candle {when} UTC \(row 30\)", out), out
    assert "look-ahead in" in out.splitlines()[0]


@pytest.mark.parametrize("spec", ["sma-cross", "rsi-mean-reversion", "bollinger-breakout", "USER"])
def test_check_lookahead_passes_a_clean_strategy_in_one_line(spec: str, tmp_path: Path, short_csv: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    if spec == "USER":
        spec = str(write(tmp_path, "ema_rsi.py", USER))
    code, out, err = run(capsys, "check-lookahead", "--strategy", spec, "--data", short_csv)

    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 1 and out.rstrip().endswith("no look-ahead found"), out


def test_check_lookahead_takes_parameters_and_keeps_the_model_mode(short_csv: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check-lookahead", "--strategy", "sma-cross", "--param", "slow=40", "--data",
                       short_csv)
    assert code == 0 and out.startswith("sma-cross(fast=10,slow=40): 2000 candles")
    code, out, _ = run(capsys, "check-lookahead", "--model", "sma-cross", "--data", short_csv, "--cuts", "4")
    assert code == 0 and out.startswith("sma-cross(10,30): 2000 candles, 4 cut points")
    code, out, err = run(capsys, "check-lookahead", "--model", "sma-cross", "--param", "fast=3", "--data", short_csv)
    assert (code, out) == (2, "")
    assert err == "error: --param and --config go with --strategy; a --model is checked as saved\n"
    with pytest.raises(SystemExit) as exc:
        main(["check-lookahead", "--data", str(short_csv), "--model", "sma-cross", "--strategy", "sma-cross"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# --- bad strategy files and parameters: one line, exit 2 ----------------------------------------------------


def line_of(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


BAD_FILES = {
    "syntax error": (USER.replace("def populate_exit_trend(self, df):", "def populate_exit_trend(self, df)"), (),
                     [f"ema_rsi.py:{line_of(USER, 'def populate_exit_trend')}: syntax error: expected ':'"]),
    "missing method": (USER[:USER.index("    def populate_exit_trend")], (),
                       ["EmaRsi: missing method populate_exit_trend(self, df)"]),
    "wrong column type": (USER.replace('.astype(int)\n        df["enter_tag"]', '.map({True: "yes", False: "no"})'
                                       '\n        df["enter_tag"]'), (),
                          ["EmaRsi: column 'enter_long' has type ", "; it must hold 0/1 or True/False"]),
    "NaN signals": (USER.replace('df["exit_long"] = (df["ema_fast"] < df["ema_slow"]).astype(int)',
                                 'df["exit_long"] = (df["ema_fast"] < df["ema_slow"]).astype(int)\n'
                                 '        df.loc[df.index[100:], "exit_long"] = float("nan")'), (),
                    ["EmaRsi: column 'exit_long' is NaN at row 100 (", "10899 rows"]),
    "error in a method": (USER.replace('rsi(df["close"], 14)', 'rsi(df["closing"], 14)'), (),
                          ["EmaRsi.populate_indicators (",
                           f"ema_rsi.py:{line_of(USER, 'rsi(df[')}): KeyError: 'closing'"]),
    "parameter out of range": (USER, ("--param", "fast=70"),
                               ["EmaRsi: parameter fast='70' is out of range 5..50"]),
    "unknown parameter": (USER, ("--param", "rsi_mx=60"),
                          ["--param rsi_mx=60: EmaRsi: unknown parameter 'rsi_mx' (did you mean 'rsi_max'?"]),
    "parameter of the wrong type": (USER, ("--param", "slow=fast"),
                                    ["EmaRsi: parameter slow='fast' is not an integer"]),
    "not NAME=VALUE": (USER, ("--param", "fast:12"), ["--param 'fast:12': write NAME=VALUE"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_strategy_file_or_parameter_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    source, extra, expected = BAD_FILES[case]
    path = write(tmp_path, "ema_rsi.py", source)

    done = cli("backtest", "--data", DATA, "--strategy", f"{path}:EmaRsi", *extra, "--json", tmp_path / "bt.json")

    line = one_line_error(done, *expected)
    assert line.startswith("error: ")
    assert not (tmp_path / "bt.json").exists()


def test_a_bad_strategy_in_a_comparison_or_a_check_is_one_line_too(tmp_path: Path, short_csv: Path) -> None:
    path = write(tmp_path, "nan.py", BAD_FILES["NaN signals"][0])
    one_line_error(cli("backtest", "--data", DATA, "--strategy", "sma-cross", "--strategy", path),
                   "EmaRsi: column 'exit_long' is NaN at row 100")
    one_line_error(cli("check-lookahead", "--strategy", path, "--data", short_csv),
                   "EmaRsi: column 'exit_long' is NaN at row 100")
    one_line_error(cli("backtest", "--data", DATA, "--strategy", tmp_path / "absent.py"),
                   f"error: strategy file {tmp_path / 'absent.py'}: no such file")


def test_strategy_and_model_flags_do_not_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "backtest", "--data", DATA, "--strategy", "sma-cross", "--model", tmp_path)
    assert (code, out) == (2, "")
    assert err == "error: --model backtests a trained model: leave out --strategy and --param\n"
    code, out, err = run(capsys, "backtest", "--data", DATA, "--strategy", "model")
    assert (code, out) == (2, "") and err == "error: --strategy model: a trained model is backtested with --model DIR\n"
    code, out, err = run(capsys, "backtest", "--data", DATA, "--strategy", "sma-cross", "--strategy", "sma-cross")
    assert (code, out) == (2, "")
    assert err.startswith("error: sma-cross(10,30) is asked for twice;") and err.count("\n") == 1


# --- new-strategy -------------------------------------------------------------------------------------------


def test_new_strategy_writes_a_template_that_backtests_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)

    code, out, err = run(capsys, "new-strategy", "ema-rsi")

    assert (code, err) == (0, "")
    written = tmp_path / "ema_rsi.py"
    assert written.is_file() and out.startswith("Wrote ema_rsi.py (class EmaRsi)")
    assert "trading-agent backtest --strategy ema_rsi.py:EmaRsi --data CANDLES.csv" in out
    code, out, err = run(capsys, "backtest", "--strategy", "ema_rsi.py:EmaRsi", "--data", DATA)
    assert (code, err) == (0, "")
    assert out.startswith("Backtest BTCUSDT · EmaRsi(fast=12,slow=26,rsi_max=70.0,confirm=True) · 10,999 candles")
    assert int(metric_cells(out, "Trades")[0]) > 10
    assert run(capsys, "check-lookahead", "--strategy", "ema_rsi.py", "--data", DATA)[0] == 0
    # never overwritten
    before = written.read_bytes()
    code, out, err = run(capsys, "new-strategy", "ema_rsi")
    assert (code, out, err) == (2, "", "error: ema_rsi.py exists; choose another name or --out directory\n")
    assert written.read_bytes() == before


def test_new_strategy_out_folder_and_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "new-strategy", "trend2.py", "--out", tmp_path / "strategies")
    assert code == 0 and (tmp_path / "strategies" / "trend2.py").is_file()
    assert f"--strategy {tmp_path / 'strategies' / 'trend2.py'}:Trend2 " in out
    for name, problem in [("1st", "use letters, digits, '-' or '_', starting with a letter"),
                          ("my strat", "use letters, digits"), ("a/b", "use letters, digits"),
                          ("class", "use letters, digits"),
                          ("pandas", "pandas.py would hide the Python module 'pandas'; choose another name")]:
        code, out, err = run(capsys, "new-strategy", name, "--out", tmp_path)
        assert (code, out) == (2, ""), name
        assert err.startswith(f"error: strategy name {name!r}: {problem}") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["strategies"]


# --- strategies ---------------------------------------------------------------------------------------------


def test_strategies_lists_builtins_and_a_folder_with_its_broken_files(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    write(folder, "ema_rsi.py", USER)
    write(folder, "broken.py", "def f(:\n")
    write(folder, "_helpers.py", "X = 1\n")

    code, out, err = run(capsys, "strategies", "--folder", folder)

    assert (code, err) == (0, "")
    assert re.search(r"^  sma-cross +Long when the fast SMA of the close crosses above the slow one, out when it "
                     r"crosses below\.$", out, re.M)
    assert re.search(r"^ +fast 1\.\.500 \(default 10\), slow 2\.\.1000 \(default 30\); timeframe any$", out, re.M)
    assert re.search(r"^  bollinger-breakout +Follow a breakout: .* middle band \(the SMA\)\.$", out, re.M)
    assert "stoploss -10 %" in out and "k 0.5..4 (default 2)" in out
    assert re.search(rf"^  {re.escape(str(folder / 'ema_rsi.py'))}:EmaRsi +Long while the fast EMA is above", out,
                     re.M)
    assert "fast 5..50 (default 12), slow 20..200 (default 26), rsi_max 50..90 (default 70); timeframe 5m, " \
           "stoploss -4 %" in out
    assert re.search(rf"^  {re.escape(str(folder / 'broken.py'))} +error: strategy file .*broken\.py:1: syntax "
                     r"error: ", out, re.M)
    assert "_helpers" not in out


def test_strategies_folder_from_the_config_else_dot_strategies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "strategies")
    assert code == 0 and "No strategies folder (./strategies does not exist" in out
    (tmp_path / "strategies").mkdir()
    write(tmp_path / "strategies", "ema_rsi.py", USER)
    code, out, _ = run(capsys, "strategies")
    assert code == 0 and "Strategies in strategies (" in out and "strategies/ema_rsi.py:EmaRsi" in out
    config = tmp_path / "trading.toml"
    config.write_text('[strategy]\nfolder = "elsewhere"\n')
    code, out, err = run(capsys, "strategies", "--config", config)
    assert (code, out) == (2, "")
    assert err == f"error: trading config {config}: [strategy] folder 'elsewhere': no such folder\n"
    (tmp_path / "elsewhere").mkdir()
    code, out, _ = run(capsys, "strategies", "--config", config)
    assert code == 0 and "Strategies in elsewhere (" in out and "none (no *.py file defines a Strategy)" in out
    code, out, err = run(capsys, "strategies", "--folder", tmp_path / "nope")
    assert (code, out, err) == (2, "", f"error: --folder {tmp_path / 'nope'}: no such folder\n")


@pytest.mark.parametrize("name", ["backtest", "check-lookahead", "new-strategy", "strategies"])
def test_every_flag_of_the_strategy_commands_has_help(name: str) -> None:
    parser = argparse.ArgumentParser()
    command(name).configure(parser)
    flags = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert flags and [a.option_strings for a in flags if not (a.help or "").strip()] == []


def test_the_plain_sma_cross_backtest_does_not_import_pandas(tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = ("import sys\nfrom engine.cli import main\n"
             f"assert main(['backtest', '--data', {str(DATA)!r}]) == 0\n"
             "print('pandas' in sys.modules, 'engine.strategy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False False"
