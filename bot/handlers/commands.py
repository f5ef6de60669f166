"""The command table: name, usage, description and the role each needs (for /help, the menu and auth)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.IntEnum):
    """Who may do what; a higher role may do everything a lower one may."""

    STRANGER = 0
    VIEWER = 1
    ADMIN = 2


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: str  # usage after the command name, "" when it takes none
    description: str  # one line, for /help and the Telegram menu
    role: Role  # needed to use the command at all
    role_with_args: Role | None = None  # needed when arguments are given (e.g. /risk key value)
    read_description: str = ""  # what the command does for someone below role_with_args

    def usage(self) -> str:
        return f"/{self.name} {self.args}".rstrip()

    def help_line(self, role: Role) -> str | None:
        """One /help line for ``role``, or None when the role may not use the command."""
        if role < self.role:
            return None
        if self.role_with_args is not None and role < self.role_with_args:
            return f"/{self.name} - {self.read_description}"
        return f"{self.usage()} - {self.description}"

    def role_for(self, has_args: bool) -> Role:
        return self.role_with_args if has_args and self.role_with_args is not None else self.role


COMMANDS: tuple[Command, ...] = (
    Command("start", "", "your user and chat ids", Role.STRANGER),
    Command("help", "", "what you may ask", Role.VIEWER),
    Command("status", "", "agent state, equity, prices", Role.VIEWER),
    Command("balance", "", "cash, equity, PnL, fees", Role.VIEWER),
    Command("positions", "", "open positions", Role.VIEWER),
    Command("orders", "", "pending orders and protective exits, with their ids", Role.VIEWER),
    Command("trades", "[n]", "last n closed trades (default 10)", Role.VIEWER),
    Command("pnl", "[day|week|month|all]", "profit and loss for a period", Role.VIEWER),
    Command("daily", "[n]", "PnL of the last n days (default 7)", Role.VIEWER),
    Command("performance", "[tags]", "results by symbol, or by the strategy's entry and exit tags", Role.VIEWER),
    Command("signal", "[SYMBOL]", "the model's last signal and why it would or would not trade", Role.VIEWER),
    Command("model", "", "models and their health", Role.VIEWER),
    Command("chart", "[SYMBOL] [candles]", "price chart with entries and exits", Role.VIEWER),
    Command("equity", "[day|week|month|all]", "equity curve with drawdown", Role.VIEWER),
    Command("health", "", "loop, database, feeds, models", Role.VIEWER),
    Command("version", "", "software version", Role.VIEWER),
    Command("risk", "[key value]", "show risk limits, or change one", Role.VIEWER, Role.ADMIN,
            "show risk limits"),
    Command("strategy", "[set NAME [key=value ...]]", "the active strategy, or switch every symbol to another "
            "(open positions are kept)", Role.VIEWER, Role.ADMIN, "the active strategy, its parameters and stops"),
    Command("reconcile", "[accept]", "live: the books against the exchange now, or adopt the exchange's figures "
            "(no order is sent)", Role.VIEWER, Role.ADMIN, "live: the books against the exchange now"),
    Command("alerts", "[type on|silent|off]", "alert settings of this chat, or change one (viewers: in their "
            "private chat)", Role.VIEWER),
    Command("apitoken", "[revoke]", "your personal token for the HTTP API, shown once (in a private chat), or "
            "revoke it", Role.VIEWER),
    Command("buy", "SYMBOL AMOUNT", "buy for AMOUNT in the quote currency (paper or live, as the agent runs)",
            Role.ADMIN),
    Command("sell", "SYMBOL [AMOUNT]", "sell AMOUNT (quote currency) or the whole position", Role.ADMIN),
    Command("close", "SYMBOL|all", "close one position or all", Role.ADMIN),
    Command("cancel", "ID", "cancel a pending order placed with /buy, /sell or /close", Role.ADMIN),
    Command("pause", "", "stop new automatic entries", Role.ADMIN),
    Command("resume", "", "resume trading (also leaves HALTED)", Role.ADMIN),
    Command("retrain", "SYMBOL", "retrain SYMBOL's model on recent candles (walk-forward checked)", Role.ADMIN),
)

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}


def usage(name: str) -> str:
    """``Usage: /buy SYMBOL AMOUNT`` for a known command."""
    return f"Usage: {BY_NAME[name].usage()}"
