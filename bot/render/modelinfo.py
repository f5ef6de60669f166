"""/model and /retrain replies: each model's metadata, training window and out-of-sample metrics, and its health."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from bot.render.values import duration, esc, number, pct, plural, when
from engine.views import ModelView

if TYPE_CHECKING:
    from engine.retrain import RetrainResult


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _num(meta: Mapping[str, object], key: str) -> float | None:
    value = meta.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def out_of_sample(overall: Mapping[str, object]) -> list[str]:
    """Walk-forward (out-of-sample) metrics: AUC, accuracy against the baseline, strategy against buy-and-hold."""
    lines = []
    if (auc := _num(overall, "auc")) is not None:
        lines.append(f"AUC {number(auc, 3)}")
    if (acc := _num(overall, "accuracy")) is not None:
        lines.append(f"accuracy {pct(acc, sign=False, decimals=1)} vs baseline "
                     f"{pct(_num(overall, 'baseline_accuracy'), sign=False, decimals=1)}")
    if (ret := _num(overall, "strategy_return")) is not None:
        trades = _num(overall, "trades")
        lines.append(f"strategy {pct(ret)} vs buy-and-hold {pct(_num(overall, 'buy_and_hold_return'))}"
                     + (f" ({plural(int(trades), 'trade')})" if trades is not None else ""))
    return lines


def _window(training: object) -> str:
    if not isinstance(training, Mapping):
        return ""
    first, last, rows = _num(training, "first_ts"), _num(training, "last_ts"), _num(training, "rows")
    if first is None or last is None:
        return ""
    return (f"trained on {when(int(first))} → {when(int(last))}"
            + (f" ({number(rows, 0)} rows)" if rows else ""))


def _model_lines(meta: Mapping[str, object], indent: str) -> list[str]:
    """One model's metadata: name and kind, what it trades, its training window and metrics."""
    kind = str(meta.get("kind", "?"))
    name = esc(meta.get("name", "?"))
    if kind == "none":
        return [f"{indent}<b>{name}</b> (no new entries): {esc(meta.get('reason', 'unknown reason'))}"]
    if kind == "rule":
        params = ", ".join(f"{esc(k)} {esc(meta[k])}" for k in ("fast", "slow") if k in meta)
        return [f"{indent}{name} (rule" + (f": {params}" if params else "") + ")"]
    head = f"{indent}{name} ({esc(kind)}"
    if meta.get("symbol") or meta.get("timeframe"):
        head += f", {esc(meta.get('symbol') or '?')} {esc(meta.get('timeframe') or '')}".rstrip()
    lines = [head + ")"]
    if window := _window(meta.get("training")):
        lines.append(f"{indent}  {window}")
    metrics = meta.get("metrics")
    if isinstance(metrics, Mapping) and metrics:
        overall = metrics.get("overall")
        shown = out_of_sample(overall if isinstance(overall, Mapping) else metrics)
        if shown:
            lines.append(f"{indent}  out of sample: " + "; ".join(shown))
    else:
        lines.append(f"{indent}  no validation metrics recorded")
    return lines


def models(items: Sequence[ModelView]) -> str:
    if not items:
        return "No models loaded."
    lines = ["Models"]
    for m in items:
        meta = m.metadata
        members = meta.get("members")
        if meta.get("kind") == "ensemble" and isinstance(members, list):
            lines.append(f"• <b>{esc(m.symbol)}</b>: {esc(m.name)} (ensemble of {len(members)})")
            for member in members:
                if isinstance(member, Mapping):
                    inner = member.get("metadata")
                    lines += _model_lines(inner if isinstance(inner, Mapping) else {"name": member.get("name")},
                                          "  ")
        else:
            first, *rest = _model_lines(meta, "  ")
            lines += [f"• <b>{esc(m.symbol)}</b>: {first.strip()}", *rest]
        for h in m.health:
            state = "healthy" if h.healthy else f"<b>degraded</b>: {esc(h.reason)}"
            extra = f", p99 {number(h.p99_ms, 1)} ms" if _finite(h.p99_ms) else ""
            extra += f", PSI {number(h.psi, 3)}" if _finite(h.psi) else ""
            lines.append(f"  health of {esc(h.name)}: {state}{extra}")
    return "\n".join(lines)


def retrain_result(r: RetrainResult) -> str:
    """What a retrain produced: walk-forward numbers (out of sample) and where the new model lives."""
    lines = [f"Retrained <b>{esc(r.symbol)}</b> on {number(r.rows, 0)} candles in {duration(r.seconds)}.",
             "Walk-forward validation, <b>out of sample</b> (each fold scored on candles it was not trained on):"]
    lines += [f"• {line}" for line in out_of_sample(r.out_of_sample)] or ["• no metrics"]
    lines.append(f"New model, now active: <code>{esc(r.path)}</code>")
    return "\n".join(lines)

