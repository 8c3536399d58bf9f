"""The report of `agentdb load`: verdicts.csv, phases.csv, report.html and latency.png, both phases in each."""

from __future__ import annotations

import csv
import html
from pathlib import Path

from loadtests.verdict import Row

PHASES = {"capacity": "each operation alone", "mixed": "mixed profile"}
COLUMNS = ("requests", "failures", "p50_ms", "p99_ms", "max_ms", "throughput_ops")


def write_csv(summary: dict, rows: list[Row], directory: Path) -> None:
    """verdicts.csv (one row per judged figure) and phases.csv (every operation in every phase)."""
    with (directory / "verdicts.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].as_dict()) if rows else ["phase"])
        writer.writeheader()
        writer.writerows(r.as_dict() for r in rows)
    with (directory / "phases.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["phase", "operation", *COLUMNS, "pgbench_tps", "pgbench_p50_ms", "pgbench_p99_ms"])
        for phase in PHASES:
            for op, m in sorted(summary["phases"][phase]["operations"].items()):
                bench = summary["pgbench"].get(op, {}) if phase == "capacity" else {}
                writer.writerow(
                    [phase, op, *(m[c] for c in COLUMNS), *(bench.get(k) for k in ("tps", "p50_ms", "p99_ms"))]
                )


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return html.escape("-" if value is None else str(value))


def write_html(summary: dict, rows: list[Row], directory: Path) -> None:
    """report.html: the verdicts, each phase's figures, the chart, and Locust's own report."""
    fields = list(rows[0].as_dict()) if rows else []
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>agentdb load</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:right}td:first-child,td:nth-child(2){text-align:left}"
        ".missed{background:#fdd}.met{background:#dfd}.generator-bound{background:#ffd}</style></head><body>",
        f"<h1>agentdb load: stack {html.escape(summary['stack'])}</h1>",
        f"<p>{summary['users']} users on {summary['workers']} Locust worker(s); capacity phase"
        f" {summary['capacity_seconds']} s per operation, mixed phase {summary['mixed_seconds']} s. pgbench ran each"
        " operation alone with the same number of clients in the same run. A figure the generator could not"
        " reach (a worker needing 90 % of a core or more, on it or waiting for it, Locust's CPU warning, or"
        " pgbench meeting the target where Locust did not) is <i>generator-bound</i>, not missed.</p>",
        "<img src='latency.png' alt='throughput and latency per operation, both phases' style='max-width:100%'>",
        "<h2>Verdicts</h2><table><tr>" + "".join(f"<th>{html.escape(f)}</th>" for f in fields) + "</tr>",
    ]
    for r in rows:
        out.append(
            f"<tr class='{r.verdict}'>" + "".join(f"<td>{_cell(v)}</td>" for v in r.as_dict().values()) + "</tr>"
        )
    out.append("</table>")
    for phase, label in PHASES.items():
        data = summary["phases"][phase]
        out.append(f"<h2>Phase: {phase} ({label})</h2><table><tr><th>operation</th>")
        out.append("".join(f"<th>{c}</th>" for c in COLUMNS) + "<th>worker CPU need %</th></tr>")
        for op, m in sorted(data["operations"].items()):
            cpu = data["generator"].get(op, data["generator"].get("*", {})).get("max_demand")
            cells = "".join(f"<td>{_cell(m[c])}</td>" for c in COLUMNS)
            out.append(f"<tr><td>{html.escape(op)}</td>{cells}<td>{_cell(cpu)}</td></tr>")
        out.append("</table>")
    out.append("<p>Locust's own report of the whole run: <a href='locust.html'>locust.html</a>.</p></body></html>")
    (directory / "report.html").write_text("\n".join(out))


def chart(summary: dict, targets: dict[str, dict[str, float]], path: Path, title: str) -> None:
    """latency.png: `figure(...)` saved."""
    import matplotlib.pyplot as plt

    fig = figure(summary, targets, title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def figure(summary: dict, targets: dict[str, dict[str, float]], title: str):
    """Three panels sharing the operations: throughput alone, p50 and p99 (alone, mixed, pgbench).

    The legend sits below the panels, outside every axes, so it can never cover a bar.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    alone = summary["phases"]["capacity"]["operations"]
    mixed = summary["phases"]["mixed"]["operations"]
    bench = summary["pgbench"]
    ops = sorted(
        op for op in set(alone) | set(mixed) if alone.get(op, {}).get("requests") or mixed.get(op, {}).get("requests")
    )
    fig, axes = plt.subplots(1, 3, sharey=True, figsize=(16, 0.42 * len(ops) + 2.6))
    y = list(range(len(ops)))
    series = [
        ("Locust, operation alone", "C0", lambda op, k: alone.get(op, {}).get(k)),
        ("Locust, mixed profile", "C1", lambda op, k: mixed.get(op, {}).get(k)),
        ("pgbench, operation alone", "C2", lambda op, k: bench.get(op, {}).get("tps" if k == "throughput_ops" else k)),
    ]
    panels = (
        ("throughput_ops", "throughput alone (ops/s, log)"),
        ("p50_ms", "p50 (ms, log)"),
        ("p99_ms", "p99 (ms, log)"),
    )
    for ax, (metric, label) in zip(axes, panels, strict=True):
        # Throughput in the mixed phase is a share of the profile, not a capacity: not drawn.
        shown = [s for s in series if not (metric == "throughput_ops" and s[0].endswith("mixed profile"))]
        height = 0.8 / len(shown)
        for i, (name, color, get) in enumerate(shown):
            offset = (i - (len(shown) - 1) / 2) * height
            values = [get(op, metric) or 0 for op in ops]
            ax.barh([v + offset for v in y], values, height=height, color=color, label=name)
        for i, op in enumerate(ops):
            if metric in targets.get(op, {}):
                ax.plot(targets[op][metric], i, marker="|", color="black", markersize=16, mew=2.5)
        ax.set_xscale("log")
        # 1-2-5 steps in plain numbers: minor labels on a log axis overlap, powers of ten are too few.
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x >= 1000 else f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.grid(axis="x", which="both", alpha=0.3)
    (target,) = axes[0].plot([], [], marker="|", color="black", linestyle="none", markersize=16, mew=2.5)
    axes[0].set_yticks(y, ops)
    axes[0].invert_yaxis()  # operations top to bottom, and each group's bars in the legend's order
    handles = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(name, handle)
    handles = {name: handles[name] for name, _, _ in series if name in handles} | {"seed target": target}
    fig.suptitle(title)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.6 / fig.get_figheight(), 1, 1))
    return fig
