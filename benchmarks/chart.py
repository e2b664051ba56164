"""The suite's bar chart: speed-up over CPython per program and mode, from run.py's JSON.

run.py calls write_chart() at the end of every run; to redraw a chart from a saved run:

    python3 benchmarks/chart.py benchmarks/results/latest.json [OUT.png]

Horizontal bars, one group per program (suite order, geometric means last), one bar per mode
that ran it (its speed-up as run.py computes it), on a logarithmic axis with CPython at 1; a
thin line across each bar spans the range of the per-repetition speed-ups. Modes that were not available are named
with their reason under the chart, so a missing bar is never mistaken for a slow one.
"""

import json
import sys

COLORS = {
    "fatjit-specialize": "#9ecae1",
    "fatjit-jit": "#3182bd",
    "fatjit-auto": "#08519c",
    "pypy": "#e6550d",
    "numba": "#31a354",
    "native": "#636363",
}


def write_chart(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    modes = [m for m, info in report["modes"].items() if info["available"] and m != "cpython"]
    rows = []  # (label, {mode: speedup})
    for name, entry in report["benchmarks"].items():
        rows.append((name, {m: entry["modes"][m]["speedup"] for m in modes
                            if "speedup" in entry["modes"][m]}))
    for key, label in (("all", "geomean (all it ran)"), ("common", "geomean (common)")):
        values = {m: report["geomean"][m][key] for m in modes
                  if m in report["geomean"] and report["geomean"][m].get(key)}
        if values:
            rows.append((label, values))

    ranges = {m: [] for m in modes}  # (min, max) of the paired speed-ups, per bar
    for name, entry in report["benchmarks"].items():
        for m in modes:
            paired = entry["modes"][m].get("paired_speedups")
            if "speedup" in entry["modes"][m]:
                ranges[m].append((min(paired), max(paired)) if paired else (0, 0))
    for m in modes:
        ranges[m] += [(0, 0)] * (len(rows) - len(ranges[m]))  # the geomean rows: no range
    bar = 0.8 / max(len(modes), 1)
    fig_height = 2.0 + 0.16 * len(rows) * max(len(modes), 1)
    fig, ax = plt.subplots(figsize=(10, fig_height))
    all_values = [v for _, values in rows for v in values.values()] or [1.0]
    for k, mode in enumerate(modes):
        ys, xs = [], []
        for i, (_, values) in enumerate(rows):
            if mode in values:
                ys.append(i + (k - (len(modes) - 1) / 2) * bar)
                xs.append(values[mode])
        ax.barh(ys, xs, height=bar * 0.92, left=0, color=COLORS.get(mode, None), label=mode)
        for y, (lo, hi) in zip(ys, ranges[mode]):
            if hi > lo:
                ax.plot([lo, hi], [y, y], color="black", linewidth=0.8)
        for y, x, (_, hi) in zip(ys, xs, ranges[mode]):
            ax.text(max(x, hi) * 1.04, y, "%.2fx" % x if x < 10 else "%.0fx" % x, va="center",
                    fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: "%gx" % x))
    highest = max([hi for m in modes for _, hi in ranges[m]] + all_values)
    ax.set_xlim(min(0.5, min(all_values) / 1.5), highest * 2.2)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([label for label, _ in rows])
    ax.invert_yaxis()
    for i, (label, _) in enumerate(rows):
        if label.startswith("geomean"):
            ax.get_yticklabels()[i].set_fontweight("bold")
    separator = sum(1 for label, _ in rows if not label.startswith("geomean")) - 0.5
    ax.axhline(separator, color="grey", linewidth=0.6, linestyle="--")
    ax.grid(axis="x", which="major", linestyle=":", linewidth=0.6)
    cpython = report["machine"]["modes"].get("cpython", "CPython")
    ax.set_xlabel("speed-up over plain CPython (%s = 1; log scale; higher is faster)"
                  % cpython.split(": ")[-1].replace("Python", "CPython"))
    setting = report["discipline"]
    machine = report["machine"]
    ax.set_title("fatjit benchmark suite, %s setting (%s, git %s)\n%s, %s cores; "
                 "%d process(es) x %d timed calls per program and mode; speed-up: median of "
                 "paired ratios%s"
                 % (report["setting"], report["date"][:10], machine["git"], machine["cpu"],
                    machine["cores"], setting["processes"], setting["runs"],
                    "\n(quick: a correctness run on tiny sizes; these timings mean nothing)"
                    if report["setting"] == "quick" else ""), fontsize=9)
    if modes:
        ax.legend(loc="lower right", fontsize=8)
    notes = ["n/a: %s: %s" % (m, info["reason"]) for m, info in report["modes"].items()
             if not info["available"]]
    if report["modes"].get("fatjit-auto", {}).get("available"):
        notes.append("fatjit-auto: python -m fatjit with FATJIT_SPECIALIZE_THRESHOLD=0 "
                     "FATJIT_JIT_THRESHOLD=0: every function the process calls is compiled at "
                     "its first call (a stress setting); fatjit-jit: only the program's hot "
                     "functions, under fatjit.jit")
    notes.append("numba and native have only the numeric kernels (and fib); numba's and the "
                 "JIT's compile times are excluded (warm-up calls; see the JSON); geomean "
                 "(common): over the programs every mode ran")
    fig.text(0.01, 0.005, "\n".join(notes), fontsize=7, va="bottom", ha="left", wrap=True)
    lines = sum(-(-len(note) // 170) for note in notes)  # wrapped at about 170 characters
    fig.tight_layout(rect=(0, (0.13 * lines + 0.1) / fig_height, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        report = json.load(f)
    out = sys.argv[2] if len(sys.argv) == 3 else sys.argv[1].rsplit(".", 1)[0] + ".png"
    write_chart(report, out)
    print(out)


if __name__ == "__main__":
    main()
