"""``trading-agent``: one console script, one sub-command per module.

Each sub-command module exposes ``configure(parser)`` and ``run(args) -> int`` and is imported only
when chosen, so ``trading-agent download`` does not pay for CatBoost or Telegram imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "backtest": ("engine.backtest_cli", "run the decision path over a CSV with a simulated clock"),
    "download": ("engine.feeds.download", "fetch closed candles from the exchange into CSV"),
    "train": ("engine.models.train_cli", "train a CatBoost model with walk-forward validation"),
    "check-lookahead": ("engine.models.lookahead", "prove features and predictions are causal"),
    "chat": ("bot.chat", "offline: engine, local Bot API emulator and bot, chat in the terminal"),
    "migrate": ("engine.store.migrate_cli", "apply the database migrations (the Procfile's release phase)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="trading-agent", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == chosen:
            importlib.import_module(module_name).configure(p)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
