"""The evaluation report: markdown, JSON and a self-contained HTML page with plotly charts.

The HTML page inlines plotly's JavaScript from the installed package, so it
opens offline and loads nothing from a CDN.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

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
    if result.notes:
        lines += ["Notes:", ""]
        lines += [f"- {k}: {v}" for k, v in result.notes.items()]
        lines.append("")
    return "\n".join(lines)


def html_page(result: EvaluationResult) -> str:
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    figures = []
    for protocol in PROTOCOLS:
        for k in result.ks:
            fig = go.Figure()
            for name in ("recall", "ndcg", "map", "mrr", "hit_rate", "revenue_recall"):
                fig.add_bar(
                    name=name,
                    x=[m.name for m in result.models],
                    y=[m.metrics[protocol][str(k)][name] for m in result.models],
                )
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
