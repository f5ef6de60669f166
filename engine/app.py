"""Composition root: builds the store, feeds, models, decision core, live engine and facade.

Nothing else in the engine constructs its own dependencies; tests and the worker call ``build``
with the parts they want to replace (a clock, feeds, a database URL). ``build`` takes the settings and
hands each part its section: the database its ``DatabaseSettings``, the exchange feeds their
``ExchangeSettings``, the models their directory.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from config.settings import ConfigError, DatabaseSettings, ExchangeSettings, Settings, TradingConfig
from engine.core.clock import Clock, LiveClock
from engine.core.model import GenericTradingModel
from engine.core.trading import TradingCore
from engine.events import EventBus
from engine.facade import EngineFacade
from engine.feeds.base import Feed
from engine.lock import EngineLock, NoLock, acquire, lock_for
from engine.loop import LiveEngine
from engine.store.db import (
    DatabaseUnavailable,
    is_sqlite,
    normalize_database_url,
    redact_url,
    sqlite_file,
    unavailable_text,
)
from engine.store.repo import Store
from engine.strategy_choice import PreparedStrategy, StrategyCatalog, build_catalog

if TYPE_CHECKING:
    from engine.exchange.venue import Venue

log = structlog.get_logger("engine.app")


@dataclass
class EngineApp:
    config: TradingConfig
    store: Store
    engine: LiveEngine
    facade: EngineFacade
    bus: EventBus
    clock: Clock
    unclean_restart: bool = False
    lock: EngineLock = field(default_factory=NoLock)
    started: bool = False
    venue: Venue | None = None  # the exchange (feed.source = "exchange"); closed with the app
    strategies: StrategyCatalog | None = None  # what a switch kept from the last run is loaded with

    async def start(self, *, lock_retry_s: float = 1.0, lock_log_every_s: float = 15.0) -> None:
        """Take the single-engine lock (waiting while another worker holds it), then restore and start.

        Nothing is read from or written to the database's state before the lock is ours: the previous
        holder may still be finishing its last step."""
        await acquire(self.lock, retry_s=lock_retry_s, log_every_s=lock_log_every_s)
        flags = await self.store.get_flags()
        saved = await self.store.load_core_state()
        had_state = saved is not None
        self._adopt_saved_strategy(saved)
        self.unclean_restart = had_state and not flags.clean_shutdown
        await self.store.set_flags(clean_shutdown=False)
        await self.engine.start(unclean_restart=self.unclean_restart)
        self.started = True

    def _adopt_saved_strategy(self, saved: dict[str, Any] | None) -> None:
        """Put back a strategy switched at run time in the last run (kept in the saved state), loaded and checked
        again; the config's strategy runs when the config changed since, or the switched one is now refused."""
        if self.strategies is None:
            return
        choice = self.strategies.restored(saved)
        if choice is None:
            return
        try:
            prepared = self.strategies.prepare(choice)
        except ConfigError as exc:  # StrategyError: e.g. its file changed or is gone
            log.warning("saved_strategy_refused", strategy=choice.spec, error=str(exc),
                        action=f"running the config's strategy ({self.strategies.configured.spec})")
            return
        self.engine.commands.adopt_strategy(prepared)
        log.info("strategy_restored", strategy=prepared.label, by=choice.by)

    async def stop_engine(self) -> None:
        """Stop the loops after their current step, record the stop and mark the shutdown clean.
        A no-op if the engine never started (e.g. it was still waiting for the lock)."""
        if not self.started:
            return
        self.started = False
        await self.engine.stop()
        await self.store.set_flags(clean_shutdown=True)

    async def close(self) -> None:
        """Close the database, then let the next worker in (the lock is released last)."""
        try:
            await self.store.close()
        finally:
            try:
                if self.venue is not None:
                    await self.venue.close()
            finally:
                await self.lock.release()

    async def stop(self) -> None:
        await self.stop_engine()
        await self.close()


EPHEMERAL_WARNING = ("DATABASE_URL is not set and this platform wipes the local disk on every restart (DYNO is set): "
                     "positions, cash, settings and undelivered alerts in the SQLite file WILL BE LOST at the next "
                     "restart. Attach a database: heroku addons:create heroku-postgresql")


def warn_if_ephemeral(database: DatabaseSettings, environ: dict[str, str] | None = None) -> bool:
    """Log a loud warning when state would live on an ephemeral disk (Heroku: DYNO is set)."""
    env = os.environ if environ is None else environ
    if database.url is None and env.get("DYNO"):
        log.warning("ephemeral_database", dyno=env["DYNO"], detail=EPHEMERAL_WARNING)
        return True
    return False


def check_sqlite_file(url: str, variable: str) -> None:
    """The SQLite file can be created or written, else ConfigError naming ``variable``; a missing directory is
    created and said so (a typo in the path would otherwise silently start an empty database)."""
    path = sqlite_file(url)
    if path is None:
        return
    if not path.parent.exists():
        try:
            path.parent.mkdir(parents=True)
        except OSError as exc:
            raise ConfigError(f"{variable}: cannot create the directory {path.parent} for {path} "
                              f"({exc.strerror or exc})") from None
        log.warning("sqlite_directory_created", path=str(path.parent.resolve()),
                    note="a new, empty database will be created there")
    if path.is_dir():
        raise ConfigError(f"{variable}: {path} is a directory, not a database file")
    if not path.parent.is_dir():
        raise ConfigError(f"{variable}: {path.parent} is not a directory")
    target = path if path.exists() else path.parent
    if not os.access(target, os.W_OK):
        raise ConfigError(f"{variable}: {target} is not writable")


def database_url(database: DatabaseSettings) -> str:
    raw = database.url.get_secret_value() if database.url else None
    return normalize_database_url(raw, database.sqlite_path)


def build_feeds(venue: Venue | None, config: TradingConfig, clock: Clock,
                clock_ready: Callable[[], bool] | None = None) -> dict[str, Feed]:
    """The feeds of the configured source (the exchange's through ``venue``). ``clock_ready``: for the exchange,
    whether ``clock`` follows the exchange yet (False while it has not answered since start: its feeds then
    deliver nothing)."""
    tf = config.trading.timeframe
    source = config.feed.source
    feeds: dict[str, Feed] = {}
    if source == "exchange":
        from engine.feeds.exchange import ExchangeFeed

        if venue is None:
            raise ValueError("feed.source = exchange needs a venue")
        for s in config.trading.symbols:
            feeds[s] = ExchangeFeed(venue, s, tf, clock, history=config.feed.history, ready=clock_ready)
    elif source == "synthetic":
        from engine.core.types import timeframe_ms
        from engine.feeds.synthetic import SyntheticFeed

        # Start the synthetic market at a 30-day boundary before "now": start-up generates at most a month of
        # candles, and a restart within the same window sees the same prices.
        window = 30 * 86_400_000
        start = (clock.now_ms() // window) * window - (config.feed.history + 1) * timeframe_ms(tf)
        for s in config.trading.symbols:
            feeds[s] = SyntheticFeed(s, tf, clock, seed=zlib.crc32(s.encode()), history=config.feed.history,
                                     start_ms=start)
    else:
        from engine.feeds.candle_file import load_candles
        from engine.feeds.csvio import symbol_from_filename
        from engine.feeds.replay import ReplayFeed

        by_symbol: dict[str, Path] = {}
        for path in config.feed.replay_files:
            try:
                by_symbol[symbol_from_filename(path.name)[0]] = path
            except ValueError as exc:
                raise ConfigError(f"feed.replay_files: {path}: {exc}") from None
        for s in config.trading.symbols:
            if s not in by_symbol:
                raise ConfigError(f"feed.replay_files: no CSV for symbol {s} (name it like BTC_USDT-5m.csv)")
            try:  # read as the commands read files: seconds or µs are converted, gaps said (issue: time)
                loaded = load_candles(by_symbol[s], symbol=s, timeframe=tf)
            except PermissionError:
                raise ConfigError(f"feed.replay_files: {by_symbol[s]}: not readable (permission denied)") from None
            except ValueError as exc:  # CsvFormatError: names the file and the line; a missing file too
                raise ConfigError(f"feed.replay_files: {exc}") from None
            for note in (*loaded.notes, *loaded.warnings):
                log.warning("replay_file", path=str(by_symbol[s]), detail=note)
            feeds[s] = ReplayFeed(loaded.arrays, s, tf, clock, history=config.feed.history)
    return feeds


def build_strategy(config: TradingConfig, models_dir: Path, clock: Clock) -> tuple[StrategyCatalog, PreparedStrategy]:
    """The configured strategy, loaded and checked (``engine.strategy_choice``): sma-cross as ``SmaCrossModel``
    with its fast/slow, "model" as the registry's CatBoost model per symbol (``NoModel`` with the reason when
    refused: the engine runs on, taking no new entries for that symbol), any other spec as a ``StrategyModel``
    per symbol once it passed the timeframe and look-ahead checks. A strategy that cannot be used is a
    StrategyError (a ConfigError: one line, exit 2), raised before anything is opened."""
    catalog = build_catalog(config, models_dir=models_dir, clock=clock)
    return catalog, catalog.prepare(catalog.configured)


def build_models(models_dir: Path, config: TradingConfig, clock: Clock) -> dict[str, GenericTradingModel]:
    """The model per symbol of the configured strategy (``build_strategy``)."""
    return build_strategy(config, models_dir, clock)[1].models


async def build(settings: Settings, config: TradingConfig, *, clock: Clock | None = None,
                feeds: dict[str, Feed] | None = None, store: Store | None = None,
                poll_interval: float | None = None, heartbeat_interval: float = 60.0, lock: EngineLock | None = None,
                clock_ready: Callable[[], bool] | None = None, venue: Venue | None = None,
                **extra: Any) -> EngineApp:
    """Everything wired, nothing running. The single-engine lock is the database's own unless a
    ``store`` (then no lock, unless one is given) is passed in."""
    clock = clock or LiveClock()
    if settings.exchange.live and config.feed.source != "exchange":
        raise ConfigError(f"TRADING_MODE=live trades on the exchange's own candles: set [feed] source = \"exchange\" "
                          f"(it is {config.feed.source!r})")
    strategies, strategy = build_strategy(config, settings.models_dir, clock)  # a refusal: before anything opens
    if store is None:
        database = settings.database
        warn_if_ephemeral(database)
        url = database_url(database)
        log.info("database", url=redact_url(url))
        if is_sqlite(url):
            check_sqlite_file(url, database.variable)
        try:
            store = await Store.open(url)
        except Exception as exc:  # the start-up boundary: one line naming where and why, never the password
            log.debug("database_open_failed", exc_info=True)
            raise DatabaseUnavailable(unavailable_text(url, exc)) from None
        lock = lock or lock_for(url)
    bus = EventBus()
    live = settings.exchange.live
    if venue is None and (live or (feeds is None and config.feed.source == "exchange")):
        venue = make_venue(settings.exchange, config)
    feeds = feeds if feeds is not None else build_feeds(venue, config, clock, clock_ready)
    core = TradingCore(limits=strategy.limits(config.risk.to_core()), costs=config.paper.to_core(),
                       filters=config.signal_filters.to_core(), starting_cash=config.paper.starting_cash, clock=clock,
                       paper=not live, fills="exchange" if live else "kernel")
    if live:
        assert venue is not None
        extra.setdefault("live", live_parts(venue, store, clock, config))
        extra.setdefault("mode", "live")
    engine = LiveEngine(core=core, store=store, feeds=feeds, models=strategy.models, clock=clock, bus=bus,
                        timeframe=config.trading.timeframe,
                        poll_interval=poll_interval if poll_interval is not None else config.trading.update_interval,
                        stale_after=config.feed.stale_after, heartbeat_interval=heartbeat_interval,
                        ticker_interval=config.feed.ticker_interval, history=config.feed.history,
                        strategies=strategies, strategy=strategy, **extra)
    facade = EngineFacade(engine, records=store, strategy=strategy.label, models_dir=settings.models_dir)
    return EngineApp(config, store, engine, facade, bus, clock, lock=lock or NoLock(), venue=venue,
                     strategies=strategies)


def make_venue(exchange: ExchangeSettings, config: TradingConfig) -> Venue:
    """The configured exchange through ccxt, with the account's keys in live mode; ConfigError for an unknown id, a
    missing sandbox or an interval the exchange does not offer (each one line)."""
    from engine.exchange.client import create
    from engine.exchange.venue import Venue

    spec = exchange.spec()
    venue = Venue(spec, exchange=create(spec, exchange.credentials()) if exchange.live else None)
    venue.check_timeframe(config.trading.timeframe)
    return venue


def live_parts(venue: Venue, store: Store, clock: Clock, config: TradingConfig) -> Any:
    """What the live engine trades with (``engine.live.trader.LiveParts``): the order manager over ``store`` and
    ``venue``, and the ``[live]`` guards and timings."""
    from engine.live.orders import OrderManager
    from engine.live.parts import Guards, LiveParts
    from engine.live.types import OrderSettings

    section = config.live
    settings = OrderSettings(grace_s=section.unknown_grace, limit_timeout_s=section.limit_order_timeout)
    return LiveParts(manager=OrderManager(store, venue, clock, settings), venue=venue,
                     guards=Guards(section.max_order_notional, section.max_daily_notional),
                     poll_interval=min(1.0, max(0.05, config.trading.update_interval)),
                     reconcile_interval=section.reconcile_interval, entry_deadline=section.entry_deadline)


async def check_markets(venue: Venue, symbols: list[str]) -> bool:
    """Load the exchange's markets and check every symbol (ConfigError naming close matches). An exchange that
    does not answer is one warning, not a failed start (the feeds load the markets when it is back): False."""
    from engine.errors import ExchangeError, ExchangeUnavailable

    try:
        await venue.load_markets(attempts=2)
    except ExchangeUnavailable as exc:
        log.warning("markets_unavailable", exchange=venue.id, error=str(exc),
                    action="starting anyway: no trading until the exchange answers")
        return False
    except ExchangeError as exc:
        log.warning("markets_refused", exchange=venue.id, error=str(exc))
        return False
    for s in symbols:
        market = venue.market(s)
        if not market.active:
            log.warning("market_inactive", exchange=venue.id, symbol=s, market=market.symbol,
                        detail="the exchange lists this market as not trading now")
    return True

