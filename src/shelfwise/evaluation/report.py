"""The evaluation report: markdown, JSON and a self-contained HTML page with plotly charts.

The HTML page inlines plotly's JavaScript from the installed package, so it
opens offline and loads nothing from a CDN.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from shelfwise.evaluation.intervals import LEVEL
from shelfwise.evaluation.metrics import METRICS
from shelfwise.evaluation.run import EvaluationResult
from shelfwise.evaluation.split import PROTOCOLS

TITLES = {"all": "all items bought in the test window", "new": "new items only"}


def markdown(result: EvaluationResult) -> str:
    lines = [
        f"Cutoff {result.cutoff:%Y-%m-%d}, test to {result.end:%Y-%m-%d %H:%M}; "
        f"{result.train_rows:,} training interactions, {result.items:,} items; people evaluated: "
        + ", ".join(f"{p} {n:,}" for p, n in result.people.items())
        + ".",
        "",
    ]
    forbidden = result.forbidden_text()
    if forbidden:
        lines += [f"Shelfwise is the served pipeline: {forbidden}.", ""]
    for protocol in PROTOCOLS:
        for k in result.ks:
            lines += [f"### Protocol `{protocol}` ({TITLES[protocol]}), K = {k}", ""]
            lines.append("| model | " + " | ".join(METRICS) + " | fit s |")
            lines.append("|---|" + "---:|" * (len(METRICS) + 1))
            for m in result.models:
                row = m.metrics[protocol][str(k)]
                cells = " | ".join(f"{row[name]:.4f}" for name in METRICS)
                name = f"**{m.name}**" if m.name.startswith("shelfwise") else m.name
                lines.append(f"| {name} | {cells} | {m.fit_seconds:.1f} |")
            lines.append("")
    lines += intervals_markdown(result)
    if result.notes:
        lines += ["Notes:", ""]
        lines += [f"- {k}: {v}" for k, v in result.notes.items()]
        lines.append("")
    return "\n".join(lines)


def intervals_markdown(result: EvaluationResult) -> list[str]:
    """Shelfwise against each peer: NDCG with 95% intervals and the paired difference."""
    if not result.comparisons:
        return []
    lines = [
        f"### NDCG, shelfwise against each peer ({LEVEL:.0%} bootstrap intervals over people, "
        f"paired; {result.resamples:,} resamples, seed {result.seed})",
        "",
        "| protocol | K | model | peer | model NDCG | peer NDCG | difference | sure? |",
        "|---|---:|---|---|---|---|---|---|",
    ]
    for c in result.comparisons:
        sure = "yes" if c.delta.excludes_zero() else "no: the interval holds 0"
        lines.append(
            f"| {c.protocol} | {c.k} | {c.model} | {c.peer} | {c.model_ndcg.text()} | "
            f"{c.peer_ndcg.text()} | {c.delta.mean:+.4f} [{c.delta.low:+.4f}, "
            f"{c.delta.high:+.4f}] | {sure} |"
        )
    lines.append("")
    return lines


def html_page(result: EvaluationResult) -> str:
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    figures = []
    for protocol in PROTOCOLS:
        for k in result.ks:
            fig = go.Figure()
            for name in ("recall", "ndcg", "map", "mrr", "hit_rate", "revenue_recall"):
                y = [m.metrics[protocol][str(k)][name] for m in result.models]
                bounds = [m.ndcg_interval.get(protocol, {}).get(str(k)) for m in result.models]
                errors = None
                if name == "ndcg" and all(b is not None for b in bounds):
                    errors = {
                        "type": "data",
                        "symmetric": False,
                        "array": [b.high - v for b, v in zip(bounds, y, strict=True) if b],
                        "arrayminus": [v - b.low for b, v in zip(bounds, y, strict=True) if b],
                    }
                fig.add_bar(name=name, x=[m.name for m in result.models], y=y, error_y=errors)
            fig.update_layout(
                title=f"Protocol {protocol} ({TITLES[protocol]}), K={k}",
                barmode="group",
                height=420,
            )
            figures.append(fig.to_html(full_html=False, include_plotlyjs=False))
    table = html.escape(markdown(result))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>shelfwise evaluation</title>"
        f"<script>{get_plotlyjs()}</script></head><body style='font-family:sans-serif'>"
        "<h1>shelfwise offline evaluation</h1>"
        + "".join(f"<div>{f}</div>" for f in figures)
        + f"<h2>Tables</h2><pre>{table}</pre></body></html>"
    )


def write_report(result: EvaluationResult, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": folder / "evaluation.md",
        "json": folder / "evaluation.json",
        "html": folder / "evaluation.html",
    }
    paths["markdown"].write_text(markdown(result))
    paths["json"].write_text(json.dumps(result.as_dict(), indent=2))
    paths["html"].write_text(html_page(result))
    return paths
