"""The one door into the engine for the bot: reads, and translation to view models.

Everything the bot shows is computed here. Every change (an order, a close, a cancel, pause,
resume, a risk limit, a model swap) is the engine's command (``engine.commands``, owned by the
live engine): this module never takes the engine lock, commits or edits the core's state; it turns
a command's result into the view the bot shows. A refusal comes back as a ``Refusal`` value.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.commands import MAX_AMOUNT as MAX_AMOUNT  # the bot and tests read it here
from engine.core import kernel as K
from engine.core.risk import RISK_BOUNDS
from engine.core.types import DAY_MS, Action, OrderRequest, PositionView, Refusal, timeframe_ms
from engine.events import ALERT_KINDS, DailySummary, EngineEvent
from engine.live import views as live_views
from engine.loop import LiveEngine
from engine.ports import HasHealth, HealthReport, Records
from engine.results import per_day, per_symbol, per_tag
from engine.strategy_choice import StrategySwitch, StrategyView
from engine.views import (
    BalanceView,
    DayView,
    DustView,
    EquityChartData,
    HealthView,
    ModelHealthView,
    ModelView,
    OrderAck,
    OrdersView,
    PendingOrderView,
    PnlView,
    PriceChartData,
    ProtectiveOrderView,
    ReconcileView,
    SignalView,
    StatusView,
    SymbolPerformance,
    SymbolStatus,
    TagPerformance,
    TradesPage,
)

if TYPE_CHECKING:
    from engine.retrain import RetrainResult

PERIODS = ("day", "week", "month", "all")
ALERT_MODES = ("on", "silent", "off")


def period_start(period: str, now_ms: int) -> int:
    """UTC start of the current day / ISO week / month, or 0 for all."""
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start = midnight
    elif period == "week":
        start = midnight - timedelta(days=now.weekday())
    elif period == "month":
        start = midnight.replace(day=1)
    elif period == "all":
        return 0
    else:
        raise ValueError(f"unknown period {period!r}; use one of {', '.join(PERIODS)}")
    return int(start.timestamp() * 1000)


class EngineFacade:
    def __init__(self, engine: LiveEngine, *, records: Records, strategy: str, version: str = "0.1.0",
                 models_dir: Path = Path("models")) -> None:
        self._engine = engine
        self._commands = engine.commands
        self.models_dir = models_dir
        self._retraining = False
        self._core = engine.core
        self._store = records
        self._strategy = strategy
        self.version = version

    # ------------------------------------------------------------------ reads

    @property
    def strategy(self) -> str:
        """What decides the signals, in a few words: "sma-cross(10,30)", "model", "rsi-mean-reversion(...)"."""
        active = self._commands.strategy
        return self._strategy if active is None else active.label

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._engine.symbols)

    @property
    def mode(self) -> str:
        return self._engine.mode

    @property
    def timeframe(self) -> str:
        return self._engine.timeframe

    @property
    def timeframe_ms(self) -> int:
        """Length of one candle in milliseconds (so the bot need not know the engine's timeframe table)."""
        return timeframe_ms(self._engine.timeframe)

    def now_ms(self) -> int:
        return self._engine.clock.now_ms()

    def status(self) -> StatusView:
        core, pf = self._core, self._core.portfolio
        positions, now = pf.positions, self.now_ms()  # the property builds a dict: once per call, not per symbol
        symbols = []
        for s, st in self._engine.symbols.items():
            market = self._engine.market_price(s)  # the ticker's, or the last candle's close
            symbols.append(SymbolStatus(s, st.last_seen, market.price if market else None, st.stale,
                                        positions[s].quantity if s in positions else 0.0, st.feed.synthetic,
                                        market.source if market else "",
                                        max(0, now - market.ts) if market else None))
        return StatusView(self.mode, core.paused, core.state, core.state_reason, pf.equity(), pf.cash,
                          len(pf.positions), self._engine.started_ms, self.now_ms(), self.strategy,
                          self._engine.timeframe, tuple(symbols), *live_views.status(self._engine.trader))

    def balance(self) -> BalanceView:
        core, pf = self._core, self._core.portfolio
        equity = pf.equity()
        unrealized = sum(p.unrealized_pnl for p in pf.views())
        dust = []
        for symbol, d in sorted(pf.dust.items()):
            rules = core.rules_for(symbol)
            dust.append(DustView(symbol, rules.base or symbol, d.quantity, d.mark_price, d.value, rules.quote))
            unrealized += (d.mark_price - d.avg_price) * d.quantity - d.fee  # dust is held at its cost, as a position
        return BalanceView(self.mode, pf.cash, equity, pf.exposure(), core.starting_cash, pf.realized_pnl,
                           unrealized, pf.fees_paid, equity / core.starting_cash - 1.0, self.now_ms(), tuple(dust),
                           *live_views.balances(self._engine.trader))

    def positions(self) -> tuple[PositionView, ...]:
        """Open positions, marked at the ticker's price when it is newer than the last candle's close."""
        out = []
        for p in self._core.portfolio.views():
            market = self._engine.market_price(p.symbol)
            if market is not None and market.source == "ticker":
                p = dataclasses.replace(p, mark_price=market.price,
                                        unrealized_pnl=p.unrealized_pnl + (market.price - p.mark_price) * p.quantity)
            out.append(p)
        return tuple(out)

    async def trades(self, limit: int = 10, offset: int = 0) -> TradesPage:
        """Closed trades, newest first: the newest ``engine.results.RECENT`` from memory, older pages queried."""
        closed = await self._store.closed_trades()
        items = closed.newest(limit, offset)
        if items is None:
            items = await self._store.trades(limit, offset)
        return TradesPage(tuple(items), len(closed), offset)

    async def pnl(self, period: str = "day") -> PnlView:
        now = self.now_ms()
        start = period_start(period, now)
        found = await self._store.equity_before(start, inclusive=True)
        start_equity = self._core.starting_cash if found is None else found
        closed = (await self._store.closed_trades()).between(start, now + 1)
        end_equity = self._core.portfolio.equity()
        pnl = end_equity - start_equity
        return PnlView(period, start, now, start_equity, end_equity, pnl,
                       pnl / start_equity if start_equity else 0.0, closed.trades, closed.wins, closed.fees)

    async def daily(self, days: int = 7) -> tuple[DayView, ...]:
        """PnL per UTC day, newest first: the last ``days`` days, none before the agent's first (its oldest
        equity snapshot, or this run's start when it has decided nothing yet)."""
        now = self.now_ms()
        today = now // DAY_MS
        born = await self._store.first_equity_ts()
        born_day = min(today, self._engine.started_ms // DAY_MS, today if born is None else born // DAY_MS)
        days = max(1, min(days, today - born_day + 1))
        first = (today - days + 1) * DAY_MS
        series = await self._store.equity_series((today - days) * DAY_MS)
        closed = await self._store.closed_trades()
        # the equity the window starts from: the last snapshot before its first day, however long ago
        found = await self._store.equity_before(first)
        return per_day(today - days + 1, today, series, closed,
                       self._core.starting_cash if found is None else found, now + 1)

    async def performance(self) -> tuple[SymbolPerformance, ...]:
        """Closed trades by symbol (engine.results.per_symbol), from the store's read model: no query."""
        return per_symbol(await self._store.closed_trades(), self.symbols, self.now_ms() + 1)

    async def performance_by_tag(self) -> tuple[TagPerformance, ...]:
        """Closed trades by entry tag, then by exit tag or reason (engine.results.per_tag)."""
        return per_tag(await self._store.closed_trades(), self.now_ms() + 1)

    def risk(self) -> dict[str, float]:
        return self._core.limits.as_dict()

    def signal(self, symbol: str) -> SignalView | Refusal:
        symbol = symbol.upper()
        st = self._engine.symbols.get(symbol)
        if st is None:
            return Refusal("unknown_symbol", f"{symbol} is not traded by this agent")
        core = self._core
        reasons: list[str] = []
        refusal = core.would(symbol, Action.ENTER, self.now_ms(), entry_gates_only=True).refusal()
        if refusal:
            reasons.append(refusal.reason)
        last = st.last_signal
        if last is None:
            reasons.append("no candle processed yet")
        elif last.outcome != "order":
            reasons.append(f"last signal: {last.outcome}")
        holding = symbol in core.portfolio.positions
        # an exit order is placed while holding, an entry only while flat (and exits pass the entry checks)
        side = "" if last is None or last.outcome != "order" else ("sell" if last.action < 0 else "buy")
        if holding and side != "sell":
            reasons.append("already holding a position")
        meta = st.model.metadata()
        if meta.get("kind") == "none":
            reasons.append(f"no model, so no new entries: {meta.get('reason', 'unknown reason')}")
        if isinstance(st.model, HasHealth):
            reasons += [f"model {h.name} degraded: {h.reason}" for h in map(_model_health, st.model.health())
                        if not h.healthy]
        would = (side == "sell" and holding) or (side == "buy" and not holding and refusal is None)
        qty = core.portfolio.positions[symbol].quantity if holding else 0.0
        return SignalView(symbol, st.model.name, last, would, tuple(reasons), qty, self.now_ms(),
                          side if would else "")

    def models(self) -> tuple[ModelView, ...]:
        out = []
        for symbol, st in self._engine.symbols.items():
            health = tuple(_model_health(h) for h in st.model.health()) if isinstance(st.model, HasHealth) else ()
            out.append(ModelView(symbol, st.model.name, dict(st.model.metadata()), health))
        return tuple(out)

    async def health(self) -> HealthView:
        info = await self._engine.health_info()
        samples = [x for st in self._engine.symbols.values() for x in st.decision_ms]
        p99 = float(np.percentile(samples, 99)) if samples else None
        models = tuple(h for m in self.models() for h in m.health)
        ok = not info["stale"] and all(h.healthy for h in models)
        return HealthView(ok, info["loop_lag_ms"], info["last_candle_age_s"], tuple(info["stale"]),
                          info["db_latency_ms"], info["outbox_backlog"], info["rss_mb"],
                          (self.now_ms() - self._engine.started_ms) / 1000.0, p99, models)  # one time base

    def price_chart(self, symbol: str, candles: int = 300) -> PriceChartData | Refusal:
        symbol = symbol.upper()
        st = self._engine.symbols.get(symbol)
        if st is None:
            return Refusal("unknown_symbol", f"{symbol} is not traded by this agent")
        recent = list(st.recent)[-candles:]
        return PriceChartData(symbol, st.feed.synthetic, tuple(c.ts for c in recent),
                              tuple(c.close for c in recent), (), None)

    async def price_chart_with_trades(self, symbol: str, candles: int = 300) -> PriceChartData | Refusal:
        data = self.price_chart(symbol, candles)
        if isinstance(data, Refusal) or not data.ts:
            return data
        trades = [t for t in await self._store.trades_between(data.ts[0], self.now_ms() + 1) if t.symbol == data.symbol]
        pos = self._core.portfolio.positions.get(data.symbol)
        entry = (pos.entry_ts, pos.avg_price) if pos else None
        return PriceChartData(data.symbol, data.synthetic, data.ts, data.close, tuple(trades), entry)

    async def equity_chart(self, period: str = "all") -> EquityChartData:
        start = period_start(period, self.now_ms())
        series = await self._store.equity_series(start or None)
        ts = tuple(t for t, _ in series)
        eq = np.array([e for _, e in series], dtype=float)
        dd = 1.0 - eq / np.maximum.accumulate(eq) if eq.size else eq
        return EquityChartData(ts, tuple(float(x) for x in eq), tuple(float(x) for x in dd))

    # ------------------------------------------------------------------ money-moving and settings

    def check_order(self, symbol: str, side: str, amount: float | None, *,
                    quantity: float | None = None) -> Refusal | OrderRequest:
        """Validate an operator's order without changing anything (for the confirmation prompt): sized by a quote
        ``amount`` or a base ``quantity``."""
        return self._commands.check_order(symbol, side, amount, quantity=quantity)

    def buy_room(self, symbol: str) -> float:
        """The most a manual buy of ``symbol`` may spend now (cash, position and exposure limits; 0 if unknown)."""
        core = self._core
        i = core.index.get(symbol.upper())
        if i is None or not math.isfinite(core.s[i, K.MARK]):
            return 0.0
        return float(K.buy_budget(core.g, core.s, core.p, i, math.inf))

    async def buy(self, symbol: str, amount: float | None, *, quantity: float | None = None) -> OrderAck | Refusal:
        return await self._submit(symbol, "buy", amount, quantity)

    async def sell(self, symbol: str, amount: float | None, *, quantity: float | None = None) -> OrderAck | Refusal:
        return await self._submit(symbol, "sell", amount, quantity)

    async def _submit(self, symbol: str, side: str, amount: float | None,
                      quantity: float | None = None) -> OrderAck | Refusal:
        order = await self._commands.submit_order(symbol, side, amount, quantity=quantity)
        if isinstance(order, Refusal):
            return order
        return OrderAck(order.order_id, order.symbol, side, amount, self.mode == "paper",
                        "fills at the next candle's open", quantity)

    def check_close(self, target: str) -> Refusal | tuple[str, ...]:
        """Validate a close (one symbol or "all") without changing anything: the symbols it would close."""
        return self._commands.check_close(target)

    async def close(self, target: str) -> tuple[OrderAck, ...] | Refusal:
        """Close one position (symbol) or all ("all") at the next candle's open."""
        orders = await self._commands.close_position(target)
        if isinstance(orders, Refusal):
            return orders
        return tuple(OrderAck(o.order_id, o.symbol, "sell", None, self.mode == "paper",
                              "closes at the next candle's open") for o in orders)

    def orders(self) -> OrdersView:
        """Orders waiting for the next candle's open, and the protective exits of the open positions."""
        protective = []
        for pos in sorted(self.positions(), key=lambda p: p.symbol):
            for kind, level in (("stop_loss", pos.stop_price), ("trailing_stop", pos.trail_price),
                                ("take_profit", pos.target_price)):
                if level is not None:
                    protective.append(ProtectiveOrderView(f"{pos.symbol}-{kind}", pos.symbol, kind, level,
                                                          pos.quantity, pos.mark_price))
        sent = {} if self._engine.trader is None else self._engine.trader.state.sent
        return OrdersView(tuple(_pending_view(o, sent.get(o.order_id)) for o in self._engine.broker.open_orders()),
                          tuple(protective), self.now_ms())

    async def check_cancel(self, order_id: str) -> Refusal | PendingOrderView:
        """Validate a cancel without changing anything: the pending operator order it would withdraw, or why not
        (a protective exit, the strategy's own order, an order that already filled or was cancelled, an unknown id).
        Ids match without regard to case."""
        checked = await self._commands.check_cancel(order_id)
        return checked if isinstance(checked, Refusal) else _pending_view(checked)

    async def cancel(self, order_id: str, by: str = "operator") -> PendingOrderView | Refusal:
        """Withdraw a pending operator order before it fills (``Commands.cancel_order``)."""
        done = await self._commands.cancel_order(order_id, by)
        return done if isinstance(done, Refusal) else _pending_view(done)

    async def pause(self, by: str = "operator") -> bool:
        """Stop new automatic entries (exits and stops keep working). False if already paused."""
        return await self._commands.pause(by)

    async def resume(self, by: str = "operator") -> bool:
        """Un-pause and leave HALTED/REDUCING. False if there was nothing to resume."""
        return await self._commands.resume(by)

    def check_risk(self, key: str, value: float) -> str | None:
        return self._commands.check_risk(key, value)

    async def set_risk(self, key: str, value: float) -> dict[str, float] | Refusal:
        limits = await self._commands.set_risk(key, value)
        return limits if isinstance(limits, Refusal) else limits.as_dict()

    @staticmethod
    def risk_keys() -> tuple[str, ...]:
        return tuple(RISK_BOUNDS)

    # ------------------------------------------------------------------ models

    def check_retrain(self, symbol: str) -> Refusal | str:
        """Validate a retrain without starting it: the symbol (upper case) or why it would be refused."""
        symbol = symbol.upper()
        if symbol not in self._engine.symbols:
            return Refusal("unknown_symbol", f"{symbol} is not traded by this agent")
        active = self._commands.strategy
        if (active.choice.spec if active is not None else self._strategy) != "model":
            return Refusal("strategy", f"the strategy is {self.strategy}, a rule; set trading.strategy = "
                                       "\"model\" to trade and retrain CatBoost models")
        if self._retraining:
            return Refusal("busy", "a retrain is already running")
        from engine.retrain import too_few_candles

        problem = too_few_candles(symbol, len(self._engine.symbols[symbol].recent))
        if problem is not None:
            return Refusal("data", problem)
        return symbol

    async def retrain(self, symbol: str) -> RetrainResult | Refusal:
        """Retrain ``symbol``'s model on the candles the engine holds, in a worker thread, then swap it in.

        Returns an ``engine.retrain.RetrainResult`` or a ``Refusal``. Trading goes on meanwhile."""
        import asyncio

        checked = self.check_retrain(symbol)
        if isinstance(checked, Refusal):
            return checked
        symbol = checked
        st = self._engine.symbols[symbol]
        from engine.core.model import CandleArrays
        from engine.models.coordinator import ModelCoordinator
        from engine.models.validation import DataError
        from engine.retrain import retrain

        self._retraining = True
        try:
            arrays = CandleArrays.from_candles(list(st.recent))
            try:
                result, model = await asyncio.to_thread(retrain, arrays, symbol=symbol,
                                                        timeframe=self._engine.timeframe, models_dir=self.models_dir,
                                                        fee_bps=self._core.costs.fee_bps)
            except DataError as exc:
                return Refusal("data", str(exc))
            await self._commands.swap_model(symbol, ModelCoordinator([(model, 1.0)], self._engine.clock))
        finally:
            self._retraining = False
        return result

    # ------------------------------------------------------------------ the strategy

    def active_strategy(self) -> StrategyView | None:
        """The strategy in charge: its name, parameters with their values and where each came from (default,
        the config file's ``[strategy.params]``, ``[trading]`` fast/slow, or the chat), its stops (declared or
        the risk limits'), timeframe and warm-up, who chose it. None when the engine cannot say (built without
        a catalog, as some tests build it)."""
        return self._commands.strategy_view()

    def strategy_names(self) -> tuple[str, ...]:
        """The strategies a switch may name: the built-ins, "model", the configured one, the strategies folder's."""
        return self._commands.strategy_names()

    async def check_strategy(self, name: str, params: dict[str, str] | None = None) -> StrategyView | Refusal:
        """What a switch to ``name`` would put in charge (loaded and look-ahead checked), or why it is refused;
        changes nothing."""
        checked = await self._commands.check_strategy(name, params or {})
        if isinstance(checked, Refusal):
            return checked
        return self._commands.preview(checked)

    async def set_strategy(self, name: str, params: dict[str, str] | None = None, by: str = "operator"
                           ) -> StrategySwitch | Refusal:
        """Switch the strategy of every symbol (``Commands.swap_strategy``): open positions are kept."""
        return await self._commands.swap_strategy(name, params or {}, by)

    # ------------------------------------------------------------------ alerts

    async def reconcile(self) -> ReconcileView | Refusal:
        """Live: the books against the exchange now (``/reconcile``); paper: a refusal saying there is nothing to."""
        return await live_views.reconcile(self._engine.trader)

    async def accept_reconciliation(self, by: str = "operator") -> ReconcileView | Refusal:
        """Live: adopt the exchange's figures where the books disagree (``/reconcile accept``); no order is sent."""
        return await live_views.accept(self._engine.trader, by)

    async def daily_summary(self) -> DailySummary:
        """Build the daily summary event and put it in the outbox (the bot's JobQueue calls this)."""
        day = (await self.daily(1))[0]
        bal = self.balance()
        closed = (await self._store.closed_trades()).between((self.now_ms() // DAY_MS) * DAY_MS, self.now_ms() + 1)
        event = DailySummary(ts=self.now_ms(), day=day.day, equity=bal.equity, pnl=day.pnl, pnl_pct=day.pnl_pct,
                             trades=day.trades, fees=closed.fees)
        await self._commands.record(event)
        return event

    async def publish(self, event: EngineEvent) -> None:
        """Record an engine-side event (e.g. from the model coordinator) in the outbox and on the bus."""
        await self._commands.record(event)

    @staticmethod
    def alert_kinds() -> tuple[str, ...]:
        return ALERT_KINDS

    async def register_chat(self, chat_id: int, thread_id: int | None = None) -> None:
        await self._store.upsert_chat(chat_id, thread_id)

    async def alert_modes(self, chat_id: int) -> dict[str, str]:
        """The mode of every alert kind for the chat: each of ``ALERT_KINDS``, "on" unless set otherwise."""
        stored = await self._store.alert_modes(chat_id)
        return {kind: stored.get(kind, "on") for kind in ALERT_KINDS}

    async def set_alert_mode(self, chat_id: int, kind: str, mode: str) -> Refusal | None:
        if kind not in ALERT_KINDS:
            return Refusal("bad_kind", f"unknown alert type {kind!r}; known: {', '.join(ALERT_KINDS)}")
        if mode not in ALERT_MODES:
            return Refusal("bad_mode", f"mode must be one of {', '.join(ALERT_MODES)}")
        await self._store.set_alert_mode(chat_id, kind, mode)
        return None

    async def pending_alerts(self, limit: int = 100, *, kind: str | None = None) -> list[Any]:
        return list(await self._store.pending_deliveries(limit, kind=kind))

    async def alert_delivered(self, outbox_id: int, chat_id: int, message_id: int | None) -> None:
        await self._store.mark_delivered(outbox_id, chat_id, message_id)

    async def alert_failed(self, outbox_id: int, chat_id: int, error: str, *, final: bool) -> None:
        await self._store.mark_failed(outbox_id, chat_id, error, final)

    async def deactivate_chat(self, chat_id: int) -> None:
        await self._store.set_chat_active(chat_id, False)


def _pending_view(o: OrderRequest, sent: Any = None) -> PendingOrderView:
    """``sent``: live, the order's entry in the trader's sent table (``engine.live.parts.SentOrder``), if sent."""
    return PendingOrderView(o.order_id, o.symbol, o.side.value, o.reason, o.decided_ts, o.quantity, o.notional,
                            o.fraction, sent.client_id if sent else "", sent.booked if sent else 0.0)


def _model_health(h: HealthReport) -> ModelHealthView:
    return ModelHealthView(h.name, h.healthy, h.reason, h.p99_ms, h.psi)
