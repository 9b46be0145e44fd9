#!/usr/bin/env python3
"""Draws "how cost grows" charts (SVG) from the benches' own output.

Reads criterion's files for `benches/scaling.rs` (every
`<criterion dir>/**/new/benchmark.json` with the `estimates.json` beside
it; criterion writes group `scaling/roles` to directory `scaling_roles`)
and the concurrency sweep of `benches/http_load.sh` (lines "connections
route req/s p50 p99"), and writes to the output directory:

  response_size.svg    guard overhead vs response size (admin, teacher)
  roles.svg            overhead vs roles in the token; the first request's compile
  token_hit_ratio.svg  overhead vs verified-token cache hit ratio
  http_concurrency.svg HTTP requests/s vs connections, bare and guarded

A chart whose input is missing is skipped with a warning. A Markdown table
of the plotted figures goes to stdout. Python 3.11 standard library only;
the SVG is written by hand.

  python3 benches/charts.py --criterion target/criterion \
      --http target/http_sweep.txt --out docs/charts

`benches/charts.sh` runs the benches and then this script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
COLORS = {
    "blue": "#1f77b4",
    "orange": "#e3691c",
    "green": "#2ca02c",
    "grey": "#7f7f7f",
    "purple": "#8e44ad",
}


# ---------------------------------------------------------------- input


@dataclass
class Estimate:
    """One criterion case: time per iteration and its 95 % confidence
    interval, in ns (criterion's slope estimate where it has one, as its
    own report prints, else the mean)."""

    mean: float
    lo: float
    hi: float


def read_criterion(root: Path) -> dict[tuple[str, str, str | None], Estimate]:
    """Every case under `root`, keyed by (group, function, value)."""
    cases: dict[tuple[str, str, str | None], Estimate] = {}
    for bench in sorted(root.glob("**/new/benchmark.json")):
        estimates = bench.with_name("estimates.json")
        if not estimates.exists():
            continue
        meta = json.loads(bench.read_text())
        all_est = json.loads(estimates.read_text())
        est = all_est.get("slope") or all_est["mean"]
        ci = est["confidence_interval"]
        key = (meta["group_id"], meta.get("function_id") or "", meta.get("value_str"))
        cases[key] = Estimate(est["point_estimate"], ci["lower_bound"], ci["upper_bound"])
    return cases


def series_of(cases, group: str, function: str) -> dict[float, Estimate]:
    """The cases of `group/function/<value>`, by numeric value."""
    out = {}
    for (g, f, v), e in cases.items():
        if g == group and f == function and v is not None:
            try:
                out[float(v)] = e
            except ValueError:
                pass
    return dict(sorted(out.items()))


def single(cases, group: str, function: str) -> Estimate | None:
    """A case without a value (`group/function`)."""
    for (g, f, v), e in cases.items():
        if g == group and f == function and v is None:
            return e
    return None


def read_http(path: Path) -> dict[str, dict[int, list[float]]]:
    """The sweep: route -> connections -> req/s of each round."""
    runs: dict[str, dict[int, list[float]]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 3:
            continue
        conns, route, rps = int(parts[0]), parts[1], float(parts[2])
        runs.setdefault(route, {}).setdefault(conns, []).append(rps)
    return runs


# ---------------------------------------------------------------- axes


@dataclass
class Axis:
    """An axis: its range, scale, ticks and how to label them."""

    label: str
    lo: float
    hi: float
    log: bool = False
    reverse: bool = False
    ticks: list[float] | None = None
    fmt: object = None
    minor: list[float] = field(default_factory=list)
    # Room left at each end (a fraction of the axis), so that the first and
    # last markers are not cut by the frame.
    pad: float = 0.0

    def frac(self, v: float) -> float:
        if self.log:
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        f = self.pad + f * (1 - 2 * self.pad)
        return 1 - f if self.reverse else f

    def label_of(self, v: float) -> str:
        return self.fmt(v) if self.fmt else plain(v)


def plain(v: float) -> str:
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:g}"


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[float]]:
    """1-2-5 ticks of a log axis, and the other integer multiples as minor."""
    major, minor = [], []
    for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in range(1, 10):
            v = m * 10.0**k
            if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9):
                (major if m in (1, 2, 5) else minor).append(v)
    if len(major) > 9:  # many decades: label only the powers of ten
        minor += [v for v in major if not math.isclose(math.log10(v) % 1, 0, abs_tol=1e-9)]
        major = [v for v in major if math.isclose(math.log10(v) % 1, 0, abs_tol=1e-9)]
    return major, sorted(minor)


def log_range(values: list[float]) -> tuple[float, float]:
    """A log range around `values`, widened to 1-2-5 steps."""
    lo, hi = min(values), max(values)
    steps = [1, 2, 5, 10]
    k = math.floor(math.log10(lo))
    lo_r = max(s * 10.0**k for s in steps if s * 10.0**k <= lo * (1 + 1e-9))
    k = math.floor(math.log10(hi))
    hi_r = min(s * 10.0**k for s in steps if s * 10.0**k >= hi * (1 - 1e-9))
    return lo_r, hi_r


def nice_linear(hi: float) -> tuple[float, list[float]]:
    """A top for a 0-based linear axis and its ticks (1-2-5 steps)."""
    if hi <= 0:
        return 1.0, [0.0, 0.5, 1.0]
    raw = hi / 6
    k = 10.0 ** math.floor(math.log10(raw))
    step = min(s * k for s in (1, 2, 2.5, 5, 10) if s * k >= raw)
    top = step * math.ceil(hi * 1.05 / step)
    n = round(top / step)
    return top, [i * step for i in range(n + 1)]


def fmt_us(v: float) -> str:
    """A time in µs."""
    if v >= 1000:
        return f"{v / 1000:g} ms"
    return f"{v:g} µs"


def fmt_bytes(v: float) -> str:
    if v >= 1 << 20:
        return f"{sig(v / (1 << 20))} MiB"
    if v >= 1 << 10:
        return f"{sig(v / (1 << 10))} KiB"
    return f"{sig(v)} B"


def fmt_count(v: float) -> str:
    if v >= 1000 and v % 1000 == 0:
        return f"{int(v / 1000)}k"
    return plain(v)


# ---------------------------------------------------------------- drawing


@dataclass
class Point:
    x: float
    y: float
    lo: float | None = None
    hi: float | None = None


@dataclass
class Series:
    key: str
    label: str
    color: str
    points: list[Point]
    dash: str | None = None
    markers: bool = True


def num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def render(
    title: str,
    x: Axis,
    y: Axis,
    series: list[Series],
    caption: list[str],
    name: str,
) -> str:
    """The chart as an SVG document."""
    width, left, right, top, plot_h = 760, 86, 24, 58, 330
    plot_w = width - left - right
    legend_h = 20 * len(series)
    cap_top = top + plot_h + 58 + legend_h + 10
    height = cap_top + 17 * len(caption) + 10

    def px(v: float) -> float:
        return left + x.frac(v) * plot_w

    def py(v: float) -> float:
        return top + (1 - y.frac(v)) * plot_h

    def inside_y(v: float) -> bool:
        return y.lo * (1 - 1e-9) <= v <= y.hi * (1 + 1e-9) and (v > 0 or not y.log)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="12" '
        f'data-chart="{escape(name)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{width / 2}" y="28" text-anchor="middle" font-size="17" '
        f'font-weight="bold" fill="#222">{escape(title)}</text>',
    ]
    # Gridlines: minor ticks light, major ticks darker, then the frame.
    out.append('<g class="grid" stroke-width="1">')
    for v in x.minor:
        out.append(f'<line x1="{num(px(v))}" y1="{top}" x2="{num(px(v))}" y2="{top + plot_h}" stroke="#f0f0f0"/>')
    for v in y.minor:
        out.append(f'<line x1="{left}" y1="{num(py(v))}" x2="{left + plot_w}" y2="{num(py(v))}" stroke="#f0f0f0"/>')
    for v in x.ticks or []:
        out.append(f'<line x1="{num(px(v))}" y1="{top}" x2="{num(px(v))}" y2="{top + plot_h}" stroke="#dcdcdc"/>')
    for v in y.ticks or []:
        out.append(f'<line x1="{left}" y1="{num(py(v))}" x2="{left + plot_w}" y2="{num(py(v))}" stroke="#dcdcdc"/>')
    out.append("</g>")
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>'
    )
    # Tick labels and axis titles.
    out.append('<g class="x-axis" fill="#333">')
    for v in x.ticks or []:
        out.append(
            f'<line x1="{num(px(v))}" y1="{top + plot_h}" x2="{num(px(v))}" y2="{top + plot_h + 5}" stroke="#444"/>'
        )
        out.append(
            f'<text class="tick" x="{num(px(v))}" y="{top + plot_h + 19}" text-anchor="middle">'
            f"{escape(x.label_of(v))}</text>"
        )
    out.append(
        f'<text class="axis-label" x="{left + plot_w / 2}" y="{top + plot_h + 42}" '
        f'text-anchor="middle" font-size="13">{escape(x.label)}</text>'
    )
    out.append("</g>")
    out.append('<g class="y-axis" fill="#333">')
    for v in y.ticks or []:
        out.append(f'<line x1="{left - 5}" y1="{num(py(v))}" x2="{left}" y2="{num(py(v))}" stroke="#444"/>')
        out.append(
            f'<text class="tick" x="{left - 8}" y="{num(py(v) + 4)}" text-anchor="end">'
            f"{escape(y.label_of(v))}</text>"
        )
    cy = top + plot_h / 2
    out.append(
        f'<text class="axis-label" x="18" y="{cy}" text-anchor="middle" font-size="13" '
        f'transform="rotate(-90 18 {cy})">{escape(y.label)}</text>'
    )
    out.append("</g>")
    # The series, clipped to the plot area.
    out.append(
        f'<clipPath id="plot-{escape(name)}"><rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/></clipPath>'
    )
    for index, s in enumerate(series):
        # Whiskers of different series at the same x are set a little
        # apart so that none hides another.
        shift = (index - (len(series) - 1) / 2) * 3
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(
            f'<g class="series" data-series="{escape(s.key)}" data-label="{escape(s.label)}" '
            f'clip-path="url(#plot-{escape(name)})">'
        )
        pts = [p for p in s.points if inside_y(p.y)]
        if len(pts) > 1:
            path = " ".join(f"{num(px(p.x))},{num(py(p.y))}" for p in pts)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"{dash}/>'
            )
        for p in pts:
            if p.lo is not None and p.hi is not None:
                lo = max(p.lo, y.lo) if y.log else p.lo
                out.append(
                    f'<line class="ci" x1="{num(px(p.x) + shift)}" y1="{num(py(lo))}" x2="{num(px(p.x) + shift)}" '
                    f'y2="{num(py(p.hi))}" stroke="{s.color}" stroke-width="1.2"/>'
                )
            if s.markers:
                out.append(
                    f'<circle cx="{num(px(p.x))}" cy="{num(py(p.y))}" r="3.2" fill="{s.color}" '
                    f'data-x="{p.x:.12g}" data-y="{p.y:.12g}"><title>{escape(x.label_of(p.x))}: '
                    f"{escape(y.label_of(round_sig(p.y)))}</title></circle>"
                )
        out.append("</g>")
    # Legend, below the x-axis title.
    ly = top + plot_h + 62
    out.append('<g class="legend" fill="#222">')
    for i, s in enumerate(series):
        yy = ly + 20 * i
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(
            f'<line x1="{left}" y1="{yy}" x2="{left + 28}" y2="{yy}" stroke="{s.color}" stroke-width="2"{dash}/>'
        )
        if s.markers:
            out.append(f'<circle cx="{left + 14}" cy="{yy}" r="3.2" fill="{s.color}"/>')
        out.append(f'<text x="{left + 36}" y="{yy + 4}">{escape(s.label)}</text>')
    out.append("</g>")
    out.append(f'<g class="caption" fill="#555" font-size="11">')
    for i, line in enumerate(caption):
        out.append(f'<text x="{left}" y="{cap_top + 17 * i}">{escape(line)}</text>')
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def round_sig(v: float, digits: int = 3) -> float:
    if v == 0:
        return 0.0
    return round(v, digits - 1 - math.floor(math.log10(abs(v))))


def sig(v: float, digits: int = 3) -> str:
    """`v` to `digits` significant digits, without a trailing `.0`."""
    r = round_sig(v, digits)
    return f"{int(r):,}" if r == int(r) else f"{r:g}"


# ---------------------------------------------------------------- charts


def overhead(g: Estimate, bare: Estimate) -> Point:
    """Guarded minus bare in µs; the whiskers combine both intervals."""
    return Point(
        0.0,
        (g.mean - bare.mean) / 1000,
        (g.lo - bare.hi) / 1000,
        (g.hi - bare.lo) / 1000,
    )


def at(x: float, p: Point) -> Point:
    p.x = x
    return p


def y_log_axis(label: str, series: list[Series]) -> Axis:
    ys = [p.y for s in series for p in s.points if p.y > 0]
    lo, hi = log_range(ys)
    major, minor = log_ticks(lo, hi)
    return Axis(label, lo, hi, log=True, ticks=major, minor=minor, fmt=fmt_us)


def chart_response_size(cases, footer, table):
    group = "scaling/response_size"
    bare = series_of(cases, group, "bare")
    admin = series_of(cases, group, "admin")
    teacher = series_of(cases, group, "teacher")
    if not bare or not admin:
        return None
    series = [
        Series(
            "admin",
            "guarded − bare, admin token (all 8 groups kept)",
            COLORS["blue"],
            [at(b, overhead(admin[b], bare[b])) for b in admin if b in bare],
        )
    ]
    if teacher:
        series.append(
            Series(
                "teacher",
                "guarded − bare, teacher token (some groups cut)",
                COLORS["orange"],
                [at(b, overhead(teacher[b], bare[b])) for b in teacher if b in bare],
            )
        )
    series.append(
        Series(
            "bare",
            "bare router, whole request (reference)",
            COLORS["grey"],
            [Point(b, e.mean / 1000, e.lo / 1000, e.hi / 1000) for b, e in bare.items()],
            dash="5 4",
        )
    )
    xs = list(bare)
    lo_x = 1024 if min(xs) >= 1024 else min(xs)
    ticks = [lo_x * 4**k for k in range(12) if lo_x * 4**k <= max(xs) * 1.01]
    x = Axis("response body (JSON page of ≈ 1 KB student records)", lo_x, max(max(xs), ticks[-1]),
             log=True, ticks=ticks, fmt=fmt_bytes, pad=0.03)
    y = y_log_axis("time per request (log)", series)
    big = max(admin)
    per_byte = series[0].points[-1].y * 1000 / big
    caption = [
        "Full ProtectedResource stack, cached token, catalogue permissions; oneshot through axum, body read.",
        f"At {fmt_bytes(big)}: admin +{sig(series[0].points[-1].y)} µs over bare, "
        f"≈ {per_byte:.2f} ns per byte of response ({1 / per_byte:.2f} GB/s, everything included).",
    ] + footer
    for s in series:
        for p in s.points:
            table.append(("response_size", s.key, f"{plain(p.x)} B", f"{sig(p.y)} µs"))
    return render("Guard overhead vs response size", x, y, series, caption, "response_size")


def chart_roles(cases, footer, table):
    group = "scaling/roles"
    bare = single(cases, group, "bare")
    guarded = series_of(cases, group, "guarded")
    compile_ = series_of(cases, group, "compile")
    if bare is None or not guarded:
        return None
    series = [
        Series(
            "guarded",
            "guarded − bare, cached token (permissions kept with the token)",
            COLORS["blue"],
            [at(n, overhead(e, bare)) for n, e in guarded.items()],
        )
    ]
    if compile_:
        series.append(
            Series(
                "compile",
                "first request of a role set: compiling its permissions (once)",
                COLORS["purple"],
                [Point(n, e.mean / 1000, e.lo / 1000, e.hi / 1000) for n, e in compile_.items()],
            )
        )
    xs = sorted(guarded)
    major, minor = log_ticks(min(xs), max(xs))
    x = Axis("roles in the token", min(xs), max(xs), log=True, ticks=major, minor=minor, pad=0.03)
    y = y_log_axis("time (log)", series)
    first, last = series[0].points[0], series[0].points[-1]
    caption = [
        "Students catalogue + 100 generated roles; full stack GET of the 1.3 KB record; bare router "
        f"{sig(bare.mean / 1000)} µs.",
        f"Cached: +{sig(first.y)} µs with {plain(first.x)} role, +{sig(last.y)} µs with "
        f"{plain(last.x)} roles.",
    ]
    if compile_:
        c = series[1].points
        caption[-1] += f" Compiling: {sig(c[0].y)} → {sig(c[-1].y)} µs, paid once per role set."
    caption += footer
    for s in series:
        for p in s.points:
            table.append(("roles", s.key, plain(p.x), f"{sig(p.y)} µs"))
    return render("Overhead vs roles in the token", x, y, series, caption, "roles")


def chart_hit_ratio(cases, measured, footer, table):
    group = "scaling/token_hit_ratio"
    bare = single(cases, group, "bare")
    guarded = series_of(cases, group, "guarded")
    if bare is None or not guarded:
        return None

    def ratio(nominal: float) -> float:
        v = measured.get(plain(nominal))
        return float(v) if v is not None else nominal

    pts = sorted((at(ratio(n), overhead(e, bare)) for n, e in guarded.items()), key=lambda p: p.x)
    series = [Series("guarded", "guarded − bare (full stack, admin tokens, RS256)", COLORS["blue"], pts)]
    ends = [p for p in pts if p.x in (0.0, 100.0)]
    if len(ends) == 2:
        series.append(
            Series(
                "linear",
                "linear mix of the 0 % and 100 % points",
                COLORS["grey"],
                [Point(p.x, p.y) for p in ends],
                dash="5 4",
                markers=False,
            )
        )
    top, ticks = nice_linear(max(max(p.hi or p.y for p in pts), 0))
    x = Axis("verified-token cache hit ratio", 0, 100, reverse=True,
             ticks=[float(v) for v in range(0, 101, 10)], fmt=lambda v: f"{v:g} %", pad=0.03)
    y = Axis("overhead per request", 0, top, ticks=ticks, fmt=fmt_us)
    hit = next((p for p in pts if p.x == 100.0), pts[-1])
    miss = next((p for p in pts if p.x == 0.0), pts[0])
    caption = [
        "Token cache of one entry; a hot token takes the hit share, the rest cycle through 2,048 distinct tokens.",
        f"All hits +{sig(hit.y)} µs, all misses (a fresh RS256 verification each) +{sig(miss.y)} µs; "
        f"bare router {sig(bare.mean / 1000)} µs.",
    ] + footer
    for p in pts:
        table.append(("token_hit_ratio", "guarded", f"{p.x:g} %", f"{sig(p.y)} µs"))
    return render("Overhead vs distinct tokens in flight", x, y, series, caption, "token_hit_ratio")


def chart_http(runs, footer, table, sweep_note):
    if "bare" not in runs:
        return None
    labels = {
        "bare": ("bare: same handler, no guard", COLORS["grey"], "5 4"),
        "admin": ("guarded, admin token (all 8 groups)", COLORS["blue"], None),
        "teacher": ("guarded, teacher token (groups cut)", COLORS["orange"], None),
    }
    series = []
    for route in ("bare", "admin", "teacher"):
        if route not in runs:
            continue
        label, color, dash = labels[route]
        pts = []
        for c, rounds in sorted(runs[route].items()):
            # The median: on a shared machine one round in a few can be
            # far off (a single connection especially, where every request
            # waits for the other process to be scheduled).
            mid = statistics.median(rounds)
            pts.append(Point(c, mid, min(rounds), max(rounds)) if len(rounds) > 1 else Point(c, mid))
        series.append(Series(route, label, color, pts, dash=dash))
    xs = sorted({p.x for s in series for p in s.points})
    ticks = [2.0**k for k in range(0, 12) if min(xs) <= 2.0**k <= max(xs)]
    x = Axis("concurrent connections (wrk, log)", min(xs), max(xs), log=True, ticks=ticks, fmt=plain, pad=0.03)
    top, yt = nice_linear(max(p.hi or p.y for s in series for p in s.points))
    y = Axis("requests per second", 0, top, ticks=yt, fmt=fmt_count)
    bare = {p.x: p.y for p in series[0].points}
    admin = next((s for s in series if s.key == "admin"), None)
    ratios = []
    if admin:
        for p in admin.points:
            if p.x in bare and bare[p.x] > 0:
                ratios.append((p.x, 100 * p.y / bare[p.x]))
    caption = ["The school example (release) over loopback, GET /students/s-1 vs /bare/students/s-1; benches/http_load.sh."]
    if sweep_note:
        caption.append(sweep_note)
    if ratios:
        shown = [r for r in ratios if r[0] in (1, 8, 32, 256)] or ratios
        caption.append(
            "guarded (admin) / bare: " + ", ".join(f"{plain(c)} conn. {r:.0f} %" for c, r in shown) + "."
        )
    caption += footer
    for s in series:
        for p in s.points:
            table.append(("http_concurrency", s.key, plain(p.x), f"{p.y:,.0f} req/s"))
    return render("HTTP requests/s vs concurrency", x, y, series, caption, "http_concurrency")


# ---------------------------------------------------------------- main


def git_commit() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        # Only what the figures depend on: regenerated charts or a README
        # being edited do not make the library "dirty".
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--",
             "src", "benches", "examples", "fixtures", "Cargo.toml", "Cargo.lock"],
            capture_output=True, text=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--criterion", type=Path, required=True, help="criterion's output directory")
    ap.add_argument("--http", type=Path, help="benches/http_load.sh sweep output")
    ap.add_argument("--out", type=Path, required=True, help="where the SVG files go")
    ap.add_argument("--commit", help="commit named in the captions (default: git HEAD)")
    ap.add_argument("--date", help="date named in the captions (default: today, UTC)")
    args = ap.parse_args(argv)

    commit = args.commit or git_commit()
    date = args.date or dt.datetime.now(dt.timezone.utc).date().isoformat()
    footer = [f"{date} · library at {commit} · benches/charts.sh · criterion means, whiskers: 95 % CI"]
    http_footer = [f"{date} · library at {commit} · benches/charts.sh · median of the rounds, whiskers: min–max"]

    cases = read_criterion(args.criterion) if args.criterion.is_dir() else {}
    measured = {}
    ratios = args.criterion / "scaling_token_hit_ratio" / "hit_ratios.json"
    if ratios.exists():
        measured = json.loads(ratios.read_text())

    table: list[tuple[str, str, str, str]] = []
    charts = {
        "response_size": chart_response_size(cases, footer, table),
        "roles": chart_roles(cases, footer, table),
        "token_hit_ratio": chart_hit_ratio(cases, measured, footer, table),
    }
    if args.http and args.http.exists():
        note = next(
            (line.lstrip("# ").strip() for line in args.http.read_text().splitlines()
             if line.startswith("# benches/http_load.sh")),
            None,
        )
        if note:
            note = note.replace("benches/http_load.sh sweep: ", "")
        sizes = next(
            (line.lstrip("# ").strip() for line in args.http.read_text().splitlines()
             if line.startswith("# bytes:")),
            None,
        )
        if sizes:
            note = f"{note or ''}; response {sizes}".lstrip("; ")
        charts["http_concurrency"] = chart_http(read_http(args.http), http_footer, table, note)
    else:
        charts["http_concurrency"] = None

    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, svg in charts.items():
        if svg is None:
            print(f"charts.py: no data for {name}, skipped", file=sys.stderr)
            continue
        (args.out / f"{name}.svg").write_text(svg, encoding="utf-8")
        written += 1
        print(f"charts.py: wrote {args.out / (name + '.svg')}", file=sys.stderr)

    print("| chart | series | x | y |")
    print("|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
