"""``trading-agent``: one console script, one sub-command per module.

Each sub-command module exposes ``configure(parser)`` and ``run(args) -> int`` and is imported only
when chosen, so ``trading-agent download`` does not pay for CatBoost or Telegram imports. A module that holds
several sub-commands names each as ``module:ATTRIBUTE``, an object with the same two functions.

A reader that goes away (``trading-agent backtest ... | head -1``) ends the command quietly with
exit code 141 (128 + SIGPIPE), as Unix tools end, instead of a BrokenPipeError traceback.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import signal
import sys
from typing import Any, NoReturn

BROKEN_PIPE_EXIT = 128 + signal.SIGPIPE


class Parser(argparse.ArgumentParser):
    """Bad arguments get one line (``trading-agent backtest: error: ...``) and exit code 2, no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str, kind: type[int] | type[float], least: float, *, above: bool) -> float:
    """``text`` as a whole number (``kind`` int) or a finite number, at least ``least`` (above it when ``above``);
    else argparse's one-line refusal."""
    try:
        value: float = kind(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and (value > least if above else value >= least)):
        what = "a whole number" if kind is int else "a number"
        bound = f"above {least:g}" if above else f"of at least {least:g}"
        raise argparse.ArgumentTypeError(f"must be {what} {bound}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    return int(_number(text, int, 1, above=False))


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    return int(_number(text, int, 0, above=False))


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    return _number(text, float, 0, above=True)


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    return _number(text, float, 0, above=False)


COMMANDS: dict[str, tuple[str, str]] = {
    "backtest": ("engine.backtest_cli", "run the decision path over a CSV with a simulated clock"),
    "download": ("engine.feeds.download", "fetch closed candles from the exchange into CSV"),
    "exchanges": ("engine.exchange.exchanges_cli", "list the exchanges (ccxt ids) and which have candle history"),
    "train": ("engine.models.train_cli", "train a CatBoost model with walk-forward validation"),
    "check-lookahead": ("engine.models.lookahead", "prove a model's or a strategy's signals are causal"),
    "optimize": ("engine.optimize.cli", "search a strategy's parameters (Optuna), out-of-sample by walk-forward"),
    "models": ("engine.models.models_cli", "list the saved models, or activate one for a symbol"),
    "strategies": ("engine.strategy.cli:STRATEGIES", "list the built-in strategies and those in a strategies folder"),
    "new-strategy": ("engine.strategy.cli:NEW_STRATEGY", "write a commented strategy template, NAME.py, to make yours"),
    "chat": ("bot.chat", "offline: engine, local Bot API emulator and bot, chat in the terminal"),
    "migrate": ("engine.store.migrate_cli", "apply the database migrations (the Procfile's release phase)"),
}


def command(name: str) -> Any:
    """The object with ``configure`` and ``run`` for sub-command ``name`` (its module, imported now)."""
    module_name, _, attribute = COMMANDS[name][0].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it could only print a traceback
    except BrokenPipeError:
        # nothing more can be written to stdout; point it at /dev/null so the flush at exit stays quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE_EXIT
    return code


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    jit = os.environ.get("TRADING_AGENT_JIT")
    if jit is not None and jit not in ("0", "1"):  # the kernel would take any other value for "compile"
        print(f"configuration error: invalid environment variable TRADING_AGENT_JIT: must be 0 or 1 (got {jit!r})",
              file=sys.stderr)
        return 2
    parser = Parser(prog="trading-agent", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (_target, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == chosen:
            command(name).configure(p)
    args = parser.parse_args(argv)
    return int(command(args.command).run(args))


if __name__ == "__main__":
    sys.exit(main())
