"""The backtest's report: markdown tables and JSON (``BacktestResult.as_dict``)."""

from __future__ import annotations

import json
from pathlib import Path

from shelfwise.evaluation.backtest import COMPARED, TIMEZONE, BacktestResult, Comparison, scope_of
from shelfwise.evaluation.intervals import LEVEL, Interval
from shelfwise.evaluation.split import PROTOCOLS

TARGETS = {"pooled": 1.10, "origin": 1.03}


def _ratio(i: Interval) -> str:
    return f"x{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]"


def summary_markdown(result: BacktestResult) -> list[str]:
    k = min(result.ks)
    scopes = [s for s in result.scopes() if s != "pooled"]
    lines = [
        f"| protocol | served NDCG@{k} | best peer | peer NDCG@{k} | pooled ratio [{LEVEL:.0%}] | "
        + " | ".join(scopes)
        + " | targets |",
        "|---|---|---|---|---|" + "---:|" * len(scopes) + "---|",
    ]
    for protocol, s in result.summary(k).items():
        pooled = result.best_peer("pooled", protocol, k)
        met = (
            pooled.ratio.mean >= TARGETS["pooled"]
            and s["min_origin_ratio"] >= TARGETS["origin"]
            and pooled.ratio.low > 1.0
        )
        cells = " | ".join(
            f"x{s['origins'][o]['ratio']:.3f} ({s['origins'][o]['peer']})" for o in scopes
        )
        lines.append(
            f"| {protocol} | {pooled.model_value.text()} | {pooled.peer} | "
            f"{pooled.peer_value.text()} | {_ratio(pooled.ratio)} | {cells} | "
            f"{'met' if met else 'not met'} |"
        )
    return [*lines, ""]


def origins_markdown(result: BacktestResult) -> list[str]:
    k = str(min(result.ks))
    heads = [f"{scope_of(r)} {p}" for r in result.origins for p in PROTOCOLS]
    lines = [
        f"| model | {' | '.join(heads)} |",
        "|---|" + "---:|" * len(heads),
        "| people | "
        + " | ".join(f"{r.people[p]:,}" for r in result.origins for p in PROTOCOLS)
        + " |",
    ]
    for m in result.origins[0].models:
        cells = []
        for r in result.origins:
            got = next(x for x in r.models if x.name == m.name)
            cells += [f"{got.metrics[p][k]['ndcg']:.4f}" for p in PROTOCOLS]
        name = f"**{m.name}**" if m.name == result.served else m.name
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return [*lines, ""]


def ratios_markdown(result: BacktestResult, metric: str = "ndcg") -> list[str]:
    """The served model's ratio to every peer with its interval, at each origin and pooled."""
    k = min(result.ks)
    scopes = result.scopes()
    lines = [
        "| protocol | peer | " + " | ".join(scopes) + " |",
        "|---|---|" + "---|" * len(scopes),
    ]
    for protocol in PROTOCOLS:
        for peer in result.peers:
            cells = [_ratio(result.find(s, protocol, k, metric, peer).ratio) for s in scopes]
            lines.append(f"| {protocol} | {peer} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def comparisons_markdown(rows: list[Comparison]) -> list[str]:
    lines = [
        "| protocol | K | metric | peer | served | peer | ratio [95%] | difference [95%] |",
        "|---|---:|---|---|---|---|---|---|",
    ]
    for c in rows:
        d = c.delta
        lines.append(
            f"| {c.protocol} | {c.k} | {c.metric} | {c.peer} | {c.model_value.text()} | "
            f"{c.peer_value.text()} | {_ratio(c.ratio)} | "
            f"{d.mean:+.4f} [{d.low:+.4f}, {d.high:+.4f}] |"
        )
    return [*lines, ""]


def markdown(result: BacktestResult) -> str:
    k = min(result.ks)
    origins = ", ".join(f"{r.cutoff:%Y-%m-%d %H:%M %Z}" for r in result.origins)
    lines = [
        f"Rolling-origin backtest: {len(result.origins)} origins at midnight {TIMEZONE} "
        f"({origins}), {result.window_days}-day test windows, each with a "
        f"{result.window_days}-day validation window before it; {result.seconds:.0f} s wall, "
        f"{result.cpu_seconds:.0f} s CPU.",
        "",
        f"Served: `{result.served}` = {result.served_label}.",
        "",
        f"### NDCG@{k}: the served model against the best peer (pooled over origins; "
        f"each origin against its own best peer)",
        "",
        *summary_markdown(result),
        f"### NDCG@{k} at each origin",
        "",
        *origins_markdown(result),
        f"### NDCG@{k}: the served model over each peer, at each origin and pooled "
        f"(ratio of the means [{LEVEL:.0%} paired bootstrap])",
        "",
        *ratios_markdown(result),
        f"### Pooled: the served model against each peer ({LEVEL:.0%} paired bootstrap over "
        f"(person, origin), {result.resamples:,} resamples, seed {result.seed})",
        "",
        *comparisons_markdown(
            [c for c in result.comparisons if c.scope == "pooled" and c.metric in COMPARED]
        ),
        "### Choices made on each origin's validation window",
        "",
    ]
    for r in result.origins:
        lines.append(f"- {scope_of(r)}: " + json.dumps(r.notes, sort_keys=True))
    lines += ["", "### Targets the rules in force forbid", ""]
    lines += [f"- {scope_of(r)}: {r.forbidden_text() or 'not counted'}" for r in result.origins]
    lines += ["", "Notes:", ""] + [f"- {k}: {v}" for k, v in result.notes.items()]
    lines.append("")
    return "\n".join(lines)


def write_backtest(result: BacktestResult, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "backtest.md", "json": folder / "backtest.json"}
    paths["markdown"].write_text(markdown(result))
    paths["json"].write_text(json.dumps(result.as_dict(), indent=2))
    return paths


__all__ = ["markdown", "write_backtest"]
