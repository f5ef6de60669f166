"""Which strategy trades: loading and checking one for the live engine, where each parameter came from, and the
record of a switch made at run time.

``StrategyCatalog`` (one per engine, built from the trading config by ``engine.app.build``) turns a
``StrategyChoice`` (a spec, the parameters given and where each came from, who chose it) into a
``PreparedStrategy``: the model per symbol the live loop runs, after every check a strategy must pass first:

- ``sma-cross``: the fast ``SmaCrossModel`` with its ``fast``/``slow`` (trades exactly as before strategies
  existed); the parameters are still read and checked by the ``SmaCross`` strategy's declaration;
- ``model``: the active CatBoost model per symbol from the registry (``NoModel`` with its reason when refused);
- any other spec (a built-in name, ``path/file.py:Class``, ``module:Class``): the strategy is loaded with its
  parameters, its ``timeframe`` must be the engine's (or None), and it must pass the look-ahead check on a short
  generated window (``LOOKAHEAD_CANDLES`` + its warm-up; well under a second for a pandas strategy), then one
  ``StrategyModel`` per symbol (each its own instance: a strategy may keep state on ``self``).

Every refusal is a ``StrategyError`` (a ``ConfigError``): one line, the worker prints it and exits 2; a switch
in chat answers with it and changes nothing. ``engine.strategy`` (and so pandas, ~60 MB) is imported only when a
strategy is loaded: a worker on sma-cross with its ``[trading]`` fast/slow, or on "model", runs without it, as it
did before strategies existed.

A strategy is handed candles (a fresh DataFrame) and its parameters, nothing else: never the settings, the
store or a key. That is all an in-process guard can promise (docs/DESIGN.md, "Strategies are trusted code").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from engine.core.clock import Clock
from engine.core.model import GenericTradingModel, NoModel, SmaCrossModel
from engine.core.risk import RiskLimits
from engine.core.types import Refusal

if TYPE_CHECKING:
    from config.trading import TradingConfig
    from engine.strategy.base import Strategy

ParamValue = str | int | float | bool

log = structlog.get_logger("engine.strategy_choice")

MODEL = "model"  # the CatBoost registry
LOOKAHEAD_CANDLES = 500  # the start-up gate's window beyond the strategy's warm-up (generated candles)
FROM_DEFAULT = "default"
FROM_PARAMS = "config [strategy.params]"
FROM_TRADING = "config [trading] fast/slow"
FROM_CHAT = "chat"
BUILTIN_NAMES = ("sma-cross", "rsi-mean-reversion", "bollinger-breakout")  # engine.strategy.builtins (a test)
STOPS = ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct")
DECLARED = {"stop_loss_pct": "stoploss", "take_profit_pct": "take_profit", "trailing_stop_pct": "trailing_stop"}


@dataclass(frozen=True, slots=True)
class StrategyChoice:
    """A strategy as chosen: its spec, the parameters given (not the defaults) and where each came from, and who
    chose it ("config", or the person who switched) when (ms; None for the config)."""

    spec: str
    params: dict[str, ParamValue] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    by: str = "config"
    ts: int | None = None


@dataclass(frozen=True, slots=True)
class ParamInfo:
    name: str
    value: Any
    source: str  # FROM_DEFAULT, FROM_PARAMS, FROM_TRADING or FROM_CHAT
    allowed: str  # the declared range or choices ("1..500")


@dataclass(frozen=True, slots=True)
class StopInfo:
    name: str  # a risk-limit key: stop_loss_pct, take_profit_pct, trailing_stop_pct
    value: float  # positive fraction; 0 = off
    source: str  # "strategy" (declared by it) or "risk limits"


@dataclass(frozen=True, slots=True)
class StrategyView:
    """The active (or a would-be) strategy, for people: what the facade's ``strategy`` read returns."""

    spec: str
    name: str  # "sma-cross(10,30)", "rsi-mean-reversion(period=14,...)", "model"
    kind: str  # "built-in", "file", "module", "model"
    params: tuple[ParamInfo, ...]
    stops: tuple[StopInfo, ...]
    timeframe: str | None  # the strategy's own (None: any)
    startup_candles: int
    chosen_by: str  # "config" or who switched it
    chosen_ts: int | None
    lookahead: str  # what the start-up gate found ("" where it does not apply)
    study: str = ""  # the optimiser study its [strategy.params] came from (`optimize --apply`); "" for none


@dataclass(frozen=True, slots=True)
class StrategySwitch:
    """A switch done: the strategy before and after, and the open positions kept (managed by the new one's exit
    signals from now on, with the stop levels they were opened with)."""

    old: StrategyView
    new: StrategyView
    kept: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PreparedStrategy:
    """A choice loaded and checked: the model per symbol, and the strategy object (None for "model")."""

    choice: StrategyChoice
    models: dict[str, GenericTradingModel]
    strategy: Strategy | None
    label: str
    lookahead: str = ""

    def declared(self) -> dict[str, float]:
        """The stops the strategy declares, as risk-limit values (only those it declares)."""
        if self.strategy is None:
            return {}
        exits = self.strategy.protective_exits()
        return {key: exits[key] for key, attr in DECLARED.items() if getattr(self.strategy, attr) is not None}

    def limits(self, base: RiskLimits) -> RiskLimits:
        """``base`` with the strategy's declared stops in place (``strategy_limits``)."""
        if self.strategy is None:
            return base
        from engine.strategy.model import strategy_limits

        return strategy_limits(self.strategy, base)

    def saved(self, configured: StrategyChoice) -> dict[str, Any]:
        """The JSON kept with the engine's state so a restart keeps a switch; ``configured`` is what the config
        said when it was made (a later edit of the config then wins over the switch)."""
        c = self.choice
        return {"spec": c.spec, "params": dict(c.params), "sources": dict(c.sources), "by": c.by, "ts": c.ts,
                "config": {"spec": configured.spec, "params": dict(configured.params)}}


def gate_candles(strategy: Strategy, timeframe: str) -> Any:
    """The look-ahead gate's window: ``LOOKAHEAD_CANDLES`` past the warm-up, from the seeded synthetic walk."""
    from engine.feeds.synthetic import synthetic_arrays

    return synthetic_arrays(int(strategy.startup_candles) + LOOKAHEAD_CANDLES, seed=20_240_101, timeframe=timeframe)


def lookahead_gate(strategy: Strategy, timeframe: str) -> str:
    """Refuse a strategy whose signals or indicators look ahead (StrategyError naming the column and the candle);
    what it checked, for people, when clean."""
    from engine.strategy.lookahead import require_causal

    candles = gate_candles(strategy, timeframe)
    t0 = time.perf_counter()
    report = require_causal(strategy, candles)
    seconds = time.perf_counter() - t0
    log.info("lookahead_checked", strategy=strategy.name, candles=len(candles), runs=len(report.prefix_ends),
             seconds=round(seconds, 3))
    return f"no look-ahead on {len(candles)} generated candles ({len(report.prefix_ends)} truncated runs)"


class StrategyCatalog:
    """The strategies this engine may run, made from its trading config (see the module docstring)."""

    def __init__(self, *, spec: str, params: Mapping[str, ParamValue], fast: int, slow: int,
                 symbols: tuple[str, ...], timeframe: str, base_limits: RiskLimits, clock: Clock,
                 models_dir: Path = Path("models"), folder: Path | None = None, study: str | None = None) -> None:
        self.symbols = symbols
        self.study = study or ""  # the optimiser study the config's params came from
        self.timeframe = timeframe
        self.base_limits = base_limits  # the config's [risk]: the stops a strategy that declares none trades with
        self.folder = folder
        self._models_dir = models_dir
        self._clock = clock
        given: dict[str, ParamValue] = dict(params)
        sources = dict.fromkeys(given, FROM_PARAMS)
        if spec == "sma-cross":
            for key, value in (("fast", fast), ("slow", slow)):
                if key not in given:
                    given[key], sources[key] = value, FROM_TRADING
        self.configured = StrategyChoice(spec, given, sources)

    # ------------------------------------------------------------------ names a person may pick

    def folder_specs(self) -> list[str]:
        """``path:Class`` of every strategy in the configured folder that loads (none without a folder)."""
        if self.folder is None or not self.folder.is_dir():
            return []
        from engine.strategy.loader import find_strategies

        return [spec for spec, problem in find_strategies(self.folder) if problem is None]

    def names(self) -> tuple[str, ...]:
        """What ``/strategy set`` accepts: the built-ins, "model", the configured spec and the folder's classes
        (by class name). Never an arbitrary path or module from a chat."""
        out = [*BUILTIN_NAMES, MODEL]
        if self.configured.spec not in out:
            out.append(self.configured.spec)
        out += [spec.rpartition(":")[2] for spec in self.folder_specs()]
        return tuple(dict.fromkeys(out))

    def resolve(self, name: str) -> str | Refusal:
        """The spec a person's ``name`` stands for, or why it is not one they may pick."""
        text = name.strip()
        if text in BUILTIN_NAMES or text == MODEL or text == self.configured.spec:
            return text
        for spec in self.folder_specs():
            path, _, cls = spec.rpartition(":")
            if text in (cls, spec, f"{Path(path).name}:{cls}", f"{Path(path).stem}:{cls}"):
                return spec
        where = f" or a strategy in {self.folder}" if self.folder is not None else ""
        return Refusal("unknown_strategy", f"unknown strategy {text!r}: pick one of {', '.join(self.names())}"
                                           f"{where} (a chat cannot load other files)")

    def choice(self, name: str, params: Mapping[str, str], *, by: str, ts: int) -> StrategyChoice | Refusal:
        """A person's pick: the config's parameters when they pick the configured strategy, theirs on top."""
        spec = self.resolve(name)
        if isinstance(spec, Refusal):
            return spec
        if spec == MODEL and params:
            return Refusal("bad_param", "the CatBoost models take no parameters")
        base = self.configured if spec == self.configured.spec else StrategyChoice(spec)
        given: dict[str, ParamValue] = {**base.params, **params}
        sources = {**base.sources, **dict.fromkeys(params, FROM_CHAT)}
        return StrategyChoice(spec, given, sources, by=by, ts=ts)

    def restored(self, blob: Mapping[str, Any] | None) -> StrategyChoice | None:
        """A switch kept in the engine's saved state, if it still applies: None when there is none, or when the
        config names another strategy or other parameters than when the switch was made (the edit wins)."""
        saved = None if blob is None else blob.get("strategy")
        if not isinstance(saved, Mapping) or not isinstance(saved.get("spec"), str):
            return None
        then = saved.get("config")
        now = {"spec": self.configured.spec, "params": dict(self.configured.params)}
        if then != now:
            log.info("strategy_switch_dropped", saved=saved["spec"], configured=self.configured.spec,
                     detail="the trading config changed since the switch: the config's strategy runs")
            return None
        params = saved.get("params")
        sources = saved.get("sources")
        ts = saved.get("ts")
        return StrategyChoice(saved["spec"], dict(params) if isinstance(params, Mapping) else {},
                              dict(sources) if isinstance(sources, Mapping) else {}, str(saved.get("by", "?")),
                              ts if isinstance(ts, int) else None)

    # ------------------------------------------------------------------ loading and checking

    def prepare(self, choice: StrategyChoice) -> PreparedStrategy:
        """Load and check ``choice`` (module docstring); StrategyError with one line when it is refused."""
        if choice.spec == MODEL:
            return PreparedStrategy(choice, self._registry_models(), None, MODEL)
        fast_path = set(choice.params) == {"fast", "slow"} and set(choice.sources.values()) == {FROM_TRADING}
        if choice.spec == "sma-cross" and fast_path:
            fast, slow = int(choice.params["fast"]), int(choice.params["slow"])  # checked with the config
            return PreparedStrategy(choice, {s: SmaCrossModel(fast, slow) for s in self.symbols}, None,
                                    f"sma-cross({fast},{slow})")
        from engine.strategy.loader import load_strategy
        from engine.strategy.model import StrategyModel
        from engine.strategy.params import StrategyError

        strategy = load_strategy(choice.spec, choice.params)
        if strategy.timeframe is not None and strategy.timeframe != self.timeframe:
            raise StrategyError(f"{strategy.label()} is written for {strategy.timeframe} candles but [trading] "
                                f"timeframe is {self.timeframe}: set timeframe = \"{strategy.timeframe}\" or pick "
                                "another strategy")
        if choice.spec == "sma-cross":
            fast, slow = int(strategy.params()["fast"]), int(strategy.params()["slow"])
            models: dict[str, GenericTradingModel] = {s: SmaCrossModel(fast, slow) for s in self.symbols}
            return PreparedStrategy(choice, models, strategy, f"sma-cross({fast},{slow})")
        checked = lookahead_gate(strategy, self.timeframe)
        cls = type(strategy)
        models = {s: StrategyModel(strategy if i == 0 else cls(dict(choice.params)))
                  for i, s in enumerate(self.symbols)}
        return PreparedStrategy(choice, models, strategy, strategy.name, checked)

    def _registry_models(self) -> dict[str, GenericTradingModel]:
        """The active CatBoost model per symbol, watched by a coordinator; ``NoModel`` with the reason when a
        model is missing, corrupt or mismatched (the engine runs on, taking no new entries for that symbol)."""
        from engine.models.catboost_model import check_catboost
        from engine.models.coordinator import ModelCoordinator
        from engine.models.registry import ModelRegistry

        broken = check_catboost()
        registry = ModelRegistry(self._models_dir)
        models: dict[str, GenericTradingModel] = {}
        for s in self.symbols:
            loaded = Refusal("catboost", broken) if broken else registry.load_active(s)
            if isinstance(loaded, Refusal):
                log.warning("model_refused", symbol=s, reason=loaded.reason)
                models[s] = NoModel(loaded.reason)
            else:
                models[s] = ModelCoordinator([(loaded, 1.0)], self._clock)
        return models

    def limits_after(self, current: RiskLimits, old: PreparedStrategy, new: PreparedStrategy) -> RiskLimits:
        """The risk limits once ``new`` replaces ``old``: each stop ``old`` declared (and nobody changed since)
        goes back to the config's, then ``new``'s declared stops apply. Every other limit is kept as it is."""
        reverted = {key: getattr(self.base_limits, key) for key, value in old.declared().items()
                    if getattr(current, key) == value}
        return new.limits(replace(current, **reverted))

    # ------------------------------------------------------------------ for people

    def view(self, prepared: PreparedStrategy, limits: RiskLimits) -> StrategyView:
        """``prepared`` for people; ``limits``: the risk limits in force (the stops it does not declare)."""
        return replace(self._view(prepared, limits), study=self._study(prepared.choice))

    def _study(self, choice: StrategyChoice) -> str:
        """The optimiser study, when ``choice`` trades the config's [strategy.params] it wrote (none set in chat)."""
        from_config = [k for k, source in choice.sources.items() if source == FROM_PARAMS]
        same = choice.spec == self.configured.spec and from_config and FROM_CHAT not in choice.sources.values() \
            and all(choice.params.get(k) == self.configured.params.get(k) for k in from_config)
        return self.study if same else ""

    def _view(self, prepared: PreparedStrategy, limits: RiskLimits) -> StrategyView:
        choice, strategy = prepared.choice, prepared.strategy
        declared = prepared.declared()
        stops = tuple(StopInfo(key, declared[key], "strategy") if key in declared
                      else StopInfo(key, float(getattr(limits, key)), "risk limits") for key in STOPS)
        if choice.spec == MODEL:
            return StrategyView(choice.spec, prepared.label, "model", (), stops, None, 0, choice.by, choice.ts, "")
        if strategy is None:  # sma-cross on its fast path: its declaration, without importing pandas (~60 MB)
            from engine.strategy.params import SMA_CROSS_PARAMS

            values = {name: p.convert(choice.params.get(name, p.default), "sma-cross")
                      for name, p in SMA_CROSS_PARAMS.items()}
            params = tuple(ParamInfo(name, value, choice.sources.get(name, FROM_DEFAULT),
                                     SMA_CROSS_PARAMS[name].describe()) for name, value in values.items())
            return StrategyView(choice.spec, prepared.label, _kind(choice.spec), params, stops, None,
                                int(values["slow"]), choice.by, choice.ts, prepared.lookahead)
        declared_params = type(strategy).parameters()
        params = tuple(ParamInfo(name, value, choice.sources.get(name, FROM_DEFAULT),
                                 declared_params[name].describe())
                       for name, value in strategy.params().items())
        return StrategyView(choice.spec, prepared.label, _kind(choice.spec), params, stops, strategy.timeframe,
                            int(strategy.startup_candles), choice.by, choice.ts, prepared.lookahead)


def _kind(spec: str) -> str:
    if spec in BUILTIN_NAMES:
        return "built-in"
    target = spec.rpartition(":")[0] or spec
    return "file" if target.endswith(".py") or "/" in target or "\\" in target else "module"


def build_catalog(config: TradingConfig, *, models_dir: Path, clock: Clock) -> StrategyCatalog:
    """The catalog of the trading config."""
    t = config.trading
    return StrategyCatalog(spec=t.strategy, params=config.strategy.params, fast=t.fast, slow=t.slow,
                           symbols=tuple(t.symbols), timeframe=t.timeframe, base_limits=config.risk.to_core(),
                           clock=clock, models_dir=models_dir, folder=config.strategy.folder,
                           study=config.strategy.study)
