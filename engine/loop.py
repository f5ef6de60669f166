"""The live engine: one asyncio task per symbol, a heartbeat task, and the persistence of every step.

Each closed candle goes through the same ``TradingCore.on_candle`` as the backtest. The step and its
persistence run under one lock, so the state snapshot written with a step always matches what was
committed before it. If the commit fails, the core is rolled back to the snapshot taken before the
step and the candle is retried on the next poll: memory never runs ahead of the database.

A fresh engine decides the newest candle of its warm-up history at once (the rest only fills the
model window), so it can trade from its first poll. Between candles a ticker task per symbol keeps
the latest price for display and the manual order preview; decisions, fills and stops stay on
closed candles, as in the backtest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from engine.commands import Commands
from engine.core.broker import PaperBroker
from engine.core.codes import signal_of
from engine.core.model import CandleArrays, GenericTradingModel, signal_source
from engine.core.rules import MarketRules
from engine.core.trading import StepResult, TradingCore
from engine.core.types import Candle, OrderRequest, RiskState, SignalRecord, StepRecord, timeframe_ms
from engine.events import EngineEvent, EngineStarted, EngineStopped, EventBus, FeedRecovered, FeedStale
from engine.feeds.base import DEFAULT_HISTORY, FeedError, Tick
from engine.ports import Broker, Clock, MarketData, ReportsEvents, Store
from engine.strategy_choice import PreparedStrategy, StrategyCatalog

if TYPE_CHECKING:
    from engine.live.parts import LiveParts
    from engine.live.trader import LiveTrader

log = structlog.get_logger("engine.loop")

CHART_HISTORY = 2000  # recent candles kept per symbol for /chart


def live_proba(model: GenericTradingModel, window: Iterable[Candle]) -> np.ndarray:
    """The model's probabilities for the newest candle, from the trailing window (same code as batch)."""
    arrays = CandleArrays.from_candles(list(window))
    proba: np.ndarray = np.asarray(model.predict_proba(model.features(arrays)[-1:]))[0]
    return proba


def signal_tag(model: GenericTradingModel, proba: np.ndarray) -> str | None:
    """The strategy's enter_tag / exit_tag for the newest candle's signal (None: a model, or no tag)."""
    latest_tag = getattr(model, "latest_tag", None)  # engine.strategy.model.StrategyModel
    if latest_tag is None:
        return None
    action, _ = signal_of(proba)
    tag = latest_tag(int(action))
    return None if tag is None else str(tag)


@dataclass
class SymbolState:
    symbol: str
    feed: MarketData
    model: GenericTradingModel
    window: deque[Candle]
    recent: deque[Candle] = field(default_factory=lambda: deque(maxlen=CHART_HISTORY))
    last_seen: int | None = None
    warmed: bool = False
    stale: bool = False
    last_poll_error: str = ""
    behind: bool = False  # the last poll left closed candles for the next one: poll again at once
    last_signal: SignalRecord | None = None
    decision_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    tick: Tick | None = None  # the feed's latest ticker price
    ticker_error: str = ""  # why the last ticker request failed ("" when it worked)


@dataclass(frozen=True, slots=True)
class MarketPrice:
    """The freshest price of a symbol: the ticker's, or the last candle's close (timed at its close)."""

    price: float
    ts: int
    source: str  # "ticker" or "candle"


class LiveEngine:
    """Runs the decision path on live candles, persists every step, publishes every event."""

    def __init__(self, *, core: TradingCore, store: Store, feeds: Mapping[str, MarketData],
                 models: Mapping[str, GenericTradingModel], clock: Clock, bus: EventBus, timeframe: str,
                 poll_interval: float, stale_after: int = 3, heartbeat_interval: float = 60.0,
                 mode: str = "paper", ticker_interval: float = 0.0, history: int = DEFAULT_HISTORY,
                 broker: Broker | None = None, rules: Mapping[str, MarketRules] | None = None,
                 strategies: StrategyCatalog | None = None, strategy: PreparedStrategy | None = None,
                 live: LiveParts | None = None) -> None:
        self.core = core
        self.store = store
        self.lock = asyncio.Lock()
        self.trader: LiveTrader | None = None
        if live is not None:  # TRADING_MODE=live: the exchange fills the core's orders (engine.live.trader)
            from engine.live.parts import LiveBroker
            from engine.live.trader import LiveTrader

            self.trader = LiveTrader(core=core, manager=live.manager, venue=live.venue, lock=self.lock,
                                     commit=self._commit_result, clock=clock, price=self._price, guards=live.guards,
                                     symbols=tuple(feeds), timeframe_ms=timeframe_ms(timeframe),
                                     entry_deadline=live.entry_deadline)
            broker = LiveBroker(core, self.trader)
            self.order_poll_interval = live.poll_interval
            self.reconcile_interval = live.reconcile_interval
        self.broker: Broker = PaperBroker(core) if broker is None else broker
        self.clock = clock
        self.bus = bus
        self.mode = mode
        self.timeframe = timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.poll_interval = poll_interval
        self.stale_after = stale_after
        self.heartbeat_interval = heartbeat_interval
        self.ticker_interval = ticker_interval  # seconds between ticker requests; 0: prices come from candles
        self.history = history  # candles a fresh start warms up on, and a restart refills (at least the lookback)
        keep = max(CHART_HISTORY, history)  # /chart and /retrain read these
        self.symbols = {s: SymbolState(s, feeds[s], models[s], deque(maxlen=max(1, models[s].lookback)),
                                       deque(maxlen=keep))
                        for s in feeds}
        core.sources.update({s: signal_source(models[s]) for s in feeds})  # named in the reason of signal fills
        self.set_rules(rules or {})
        self.commands = Commands(core=core, broker=self.broker, store=store, clock=clock, lock=self.lock,
                                 commit_locked=self.commit_locked, swap=self._swap_model, symbols=tuple(self.symbols),
                                 paper=mode == "paper", strategies=strategies, strategy=strategy,
                                 swap_all=self.set_models)
        self.started_ms = 0
        self.loop_lag_ms = 0.0
        self.restored = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def set_rules(self, rules: Mapping[str, MarketRules]) -> None:
        """Trade each symbol under its exchange rules (``MarketRules``, by symbol) from the next decision on: the
        paper broker's fills, the kernel's decisions and the operator's checks alike. A symbol left out keeps
        the rules it has (none unless given); ``MarketRules.none(symbol)`` takes them away. Given at every start
        (rules come from the exchange), they apply to a restored snapshot too."""
        for symbol, market in rules.items():
            if symbol not in self.symbols:
                raise ValueError(f"rules for {symbol}, which this engine does not trade ({', '.join(self.symbols)})")
            self.core.set_rules(market, symbol)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, unclean_restart: bool = False) -> None:
        self.started_ms = self.clock.now_ms()
        saved = await self.store.load_core_state()
        if saved:
            self.core.restore(saved)
            self.restored = True
            for symbol, st in self.symbols.items():
                st.last_seen = self.core.last_candle_ts.get(symbol)
                st.stale = symbol in self.core.stale
            if self.trader is not None:
                self.trader.restore(saved.get("live"))
        await self.commit_action((EngineStarted(ts=self.started_ms, mode=self.mode, unclean_restart=unclean_restart),))
        if self.trader is not None:
            try:  # the orders of the last run asked about and booked before any new decision
                await self.trader.startup()
            except Exception as exc:
                log.warning("live_startup_incomplete", error=str(exc) or type(exc).__name__,
                            action="the order poll goes on asking")
            self._tasks.append(asyncio.create_task(self.trader.run_orders(self._stopping, self.order_poll_interval),
                                                   name="orders"))
            self._tasks.append(asyncio.create_task(self.trader.run_reconcile(self._stopping, self.reconcile_interval),
                                                   name="reconcile"))
        ticker_interval = self.ticker_interval or (self.poll_interval if self.trader is not None else 0.0)
        for symbol in self.symbols:
            self._tasks.append(asyncio.create_task(self._run_symbol(symbol), name=f"symbol:{symbol}"))
            if ticker_interval > 0:
                self._tasks.append(asyncio.create_task(self._run_ticker(symbol, ticker_interval),
                                                       name=f"ticker:{symbol}"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))
        log.info("engine_started", mode=self.mode, symbols=list(self.symbols), restored=self.restored)

    async def stop(self) -> None:
        """Stop the loops (the current step finishes: it runs under the lock), then record the stop."""
        self._stopping.set()
        async with self.lock:
            for task in self._tasks:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.trader is not None:
            await self.trader.close()  # the submits under way get their answers recorded
        await self.commit_action((EngineStopped(ts=self.clock.now_ms(), mode=self.mode),))
        for st in self.symbols.values():
            with contextlib.suppress(Exception):
                await st.feed.close()
        log.info("engine_stopped", mode=self.mode)

    # ------------------------------------------------------------------ per symbol

    async def _run_symbol(self, symbol: str) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll_once(symbol)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("symbol_loop_error", symbol=symbol)
                self.symbols[symbol].behind = False
            await asyncio.sleep(0 if self.symbols[symbol].behind else self.poll_interval)

    async def poll_once(self, symbol: str) -> int:
        """Fetch and process new closed candles; returns how many were stepped.

        The first poll fetches history: on a fresh start the feed's last ``history`` candles, of which the
        newest is decided at once and the others only warm the model up (never traded on); after a restart
        the ``history`` candles (at least the model window) up to the last decided candle, then every candle
        missed while down, so a restart decides what an uninterrupted run would have.
        Polls come in bounded batches; ``st.behind`` tells the loop to poll again at once.
        """
        st = self.symbols[symbol]
        first = not st.warmed
        processed = self.core.last_candle_ts.get(symbol)
        after: int | None
        if not first:
            after = st.last_seen
        elif processed is not None:
            after = processed - max(st.window.maxlen or 0, self.history) * self.tf_ms  # maxlen: the lookback
        else:
            after = None
        fresh = after is None and processed is None  # the warm-up history: only its newest candle is decided
        try:
            batch = await st.feed.poll(after)
        except FeedError as exc:
            st.last_poll_error = str(exc)
            st.behind = False
            log.warning("feed_error", symbol=symbol, error=str(exc))
            await self._check_stale(st)
            return 0
        st.last_poll_error = ""
        rules = st.feed.rules()
        if rules is not None and rules != self.core.rules_for(symbol):
            async with self.lock:  # the exchange's markets, read (again): from this candle on, for every order
                self.core.set_rules(rules, symbol)
            log.info("market_rules", symbol=symbol, step=rules.amount_step, tick=rules.price_tick,
                     min_amount=rules.min_amount, min_notional=rules.min_notional)
        st.warmed = True
        st.behind = batch.more
        for candle, reason in batch.rejected:
            log.warning("candle_rejected", symbol=symbol, ts=None if candle is None else candle.ts, reason=reason)
        stepped = 0
        newest = batch.candles[-1] if batch.candles else None
        for candle in batch.candles:
            if after is not None and candle.ts <= after:
                continue
            if (processed is not None and candle.ts <= processed) or (fresh and candle is not newest):
                self._remember(st, candle)  # history: refills the model window, is never traded on
                continue
            if await self.process_candle(st, candle):
                stepped += 1
            else:
                st.behind = False  # a step that could not be stored is retried after the poll interval
                break
        if not st.behind:  # catching up is not staleness: the feed is delivering
            await self._check_stale(st)
        return stepped

    def _remember(self, st: SymbolState, candle: Candle) -> None:
        st.window.append(candle)
        st.recent.append(candle)
        st.last_seen = candle.ts

    async def process_candle(self, st: SymbolState, candle: Candle) -> bool:
        if st.stale:
            await self._set_stale(st, False)
        self._remember(st, candle)
        t0 = time.perf_counter()
        proba = live_proba(st.model, st.window)
        model_events = tuple(st.model.pop_events()) if isinstance(st.model, ReportsEvents) else ()
        if model_events:  # degraded / recovered: to the outbox, before the decision they affect
            await self.commit_action(model_events)
        async with self.lock:
            before = self.core.snapshot()
            trader, saved = self.trader, None if self.trader is None else self.trader.state.to_dict()
            step = self.core.on_candle(st.symbol, candle, proba, signal_tag(st.model, proba))
            prepared = []
            if trader is not None:  # live: the decision's order sized and recorded as sent in the step's own commit
                for order in step.orders:
                    intent, refused = trader.prepare_locked(order)
                    step.events.extend(refused)
                    if intent is not None:
                        prepared.append((order.order_id, intent))
            st.decision_ms.append((time.perf_counter() - t0) * 1000.0)
            try:
                await self.store.record_step(self._record(step))
            except Exception:
                self.core.restore(before)
                if trader is not None and saved is not None:
                    trader.restore(saved)
                    for order_id, _ in prepared:
                        trader.forget_locked(order_id)
                st.window.pop()
                st.recent.pop()
                st.last_seen = st.window[-1].ts if st.window else None  # the candle before: retried next poll
                log.exception("step_not_persisted", symbol=st.symbol, candle_ts=candle.ts)
                return False
        st.last_signal = step.signal
        for event in step.events:
            self.bus.publish(event)
        for order_id, intent in prepared:  # live: out now, in a task of its own (a hung create holds up nothing)
            assert trader is not None
            trader.spawn(order_id, intent, t0)
        return True

    # ------------------------------------------------------------------ prices between candles

    async def _run_ticker(self, symbol: str, interval: float) -> None:
        """Keep ``st.tick`` fresh: one ticker request every ``interval`` seconds. A failure keeps the
        previous price (its age shows how old it is) and is logged once until the ticker answers again. Live, every
        price is checked against the position's stop, trailing stop and target (an exit goes out at once)."""
        st = self.symbols[symbol]
        while not self._stopping.is_set():
            try:
                st.tick = await st.feed.ticker()
                if self.trader is not None and st.tick.kind == "ticker":
                    await self.trader.check_exits(symbol, st.tick.price, st.tick.ts)
                if st.ticker_error:
                    log.info("ticker_recovered", symbol=symbol)
                st.ticker_error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = str(exc) if isinstance(exc, FeedError) else f"{type(exc).__name__}: {exc}"
                if not st.ticker_error:
                    log.warning("ticker_error", symbol=symbol, error=error)
                st.ticker_error = error or "unknown error"
            await asyncio.sleep(interval)

    def _price(self, symbol: str) -> float | None:
        found = self.market_price(symbol)
        return None if found is None else found.price

    def market_price(self, symbol: str) -> MarketPrice | None:
        """The freshest price known for ``symbol``: the ticker's when it is newer than the last candle's
        close, else that close (timed at the candle's close); None before any. A replay or synthetic
        feed's ticker is a candle's close, and says so."""
        st = self.symbols[symbol]
        candle = st.recent[-1] if st.recent else None
        tick = st.tick
        if tick is not None and (candle is None or tick.ts > candle.ts + self.tf_ms):
            return MarketPrice(tick.price, tick.ts, "ticker" if tick.kind == "ticker" else "candle")
        if candle is None:
            return None
        return MarketPrice(candle.close, candle.ts + self.tf_ms, "candle")

    def _record(self, step: StepResult) -> StepRecord:
        pf = self.core.portfolio
        return StepRecord(step.symbol, step.candle_ts, self.clock.now_ms(), tuple(step.orders), tuple(step.fills),
                          tuple(step.trades), tuple(step.events), step.signal, step.equity, pf.cash, pf.views(),
                          self.state_blob())

    def state_blob(self) -> dict[str, Any]:
        """The core's snapshot plus the flags the store mirrors into engine_state (paused, risk state and
        halt reason), so they stay readable without decoding the core's own format."""
        core = self.core
        halted = core.state is RiskState.HALTED
        blob = {**core.snapshot(), "paused": bool(core.paused), "risk_state": core.state.value,
                "halted_reason": core.state_reason if halted else None}
        switched = self.commands.saved_strategy()  # a strategy switched at run time: kept across a restart
        if switched is not None:
            blob["strategy"] = switched
        if self.trader is not None:  # the orders sent and what of them is booked: committed with the books
            blob["live"] = self.trader.snapshot()
        return blob

    async def _check_stale(self, st: SymbolState) -> None:
        now = self.clock.now_ms()
        since = (st.last_seen + self.tf_ms) if st.last_seen is not None else self.started_ms
        if not st.stale and now - since > self.stale_after * self.tf_ms:
            await self._set_stale(st, True)

    async def _set_stale(self, st: SymbolState, stale: bool) -> None:
        st.stale = stale
        now = self.clock.now_ms()
        event: EngineEvent
        if stale:
            self.core.stale.add(st.symbol)
            detail = st.last_poll_error or f"no closed candle for more than {self.stale_after} candles"
            event = FeedStale(ts=now, symbol=st.symbol, last_candle_ts=st.last_seen, detail=detail)
            log.warning("feed_stale", symbol=st.symbol, detail=detail)
        else:
            self.core.stale.discard(st.symbol)
            event = FeedRecovered(ts=now, symbol=st.symbol, last_candle_ts=st.last_seen or 0)
            log.info("feed_recovered", symbol=st.symbol)
        await self.commit_action((event,))

    # ------------------------------------------------------------------ operator actions

    def set_models(self, models: Mapping[str, GenericTradingModel]) -> None:
        """Put ``models`` (one per symbol, every symbol) in charge from the next decision on (``Commands``
        calls this under the lock). Each window takes the new lookback, refilled from the recent candles."""
        for symbol, model in models.items():
            st = self.symbols[symbol]
            size = max(1, model.lookback)
            st.window = deque(list(st.recent)[-size:], maxlen=size)
            self._swap_model(symbol, model)

    def _swap_model(self, symbol: str, model: GenericTradingModel) -> None:
        """Put ``model`` in charge of ``symbol`` (``Commands.swap_model`` calls this under the lock)."""
        self.symbols[symbol].model = model
        self.core.sources[symbol] = signal_source(model)

    async def commit_action(self, events: tuple[EngineEvent, ...], orders: tuple[OrderRequest, ...] = ()) -> None:
        """Persist an operator or lifecycle change (state snapshot + outbox events) in one transaction."""
        async with self.lock:
            await self.commit_locked(events, orders)

    async def commit_locked(self, events: tuple[EngineEvent, ...], orders: tuple[OrderRequest, ...] = ()) -> None:
        await self._commit_result(None, events, orders)
        if orders and self.trader is not None:
            self.trader.wake.set()  # an operator's order: sent at once

    async def _commit_result(self, result: StepResult | None, events: tuple[EngineEvent, ...],
                             orders: tuple[OrderRequest, ...]) -> None:
        """Persist a change made outside a candle's step (an action, or fills the exchange reported: ``result``)
        with the engine's state, in one transaction, under the held lock; then publish its events."""
        pf = self.core.portfolio
        if result is not None:
            orders = (*orders, *result.orders)
            events = (*events, *result.events)
        rec = StepRecord(None if result is None else result.symbol, None, self.clock.now_ms(), orders,
                         () if result is None else tuple(result.fills), () if result is None else tuple(result.trades),
                         events, None, pf.equity(), pf.cash, pf.views(), self.state_blob())
        await self.store.record_step(rec)
        for event in events:
            self.bus.publish(event)

    # ------------------------------------------------------------------ heartbeat

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            expected = loop.time() + self.heartbeat_interval
            await asyncio.sleep(self.heartbeat_interval)
            self.loop_lag_ms = max(0.0, (loop.time() - expected) * 1000.0)
            try:
                info = await self.health_info()
                log.info("heartbeat", **info)
                await self.store.set_flags(heartbeat_ms=self.clock.now_ms())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat_failed")

    async def health_info(self) -> dict[str, Any]:
        now = self.clock.now_ms()
        ages = {s: (None if st.last_seen is None else round((now - st.last_seen - self.tf_ms) / 1000.0, 1))
                for s, st in self.symbols.items()}
        return {
            "loop_lag_ms": round(self.loop_lag_ms, 2),
            "last_candle_age_s": ages,
            "stale": sorted(s for s, st in self.symbols.items() if st.stale),
            "db_latency_ms": round((await self.store.ping()) * 1000.0, 2),
            "outbox_backlog": await self.store.outbox_backlog(),
            "rss_mb": round(rss_bytes() / 2**20, 1),
        }


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
