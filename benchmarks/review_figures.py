"""Render time, size and smallest font of every review figure at campaign scale.

For each size, two synthetic logs in the notebook's format: a bushy campaign
(`benchmarks.overhead.campaign_log`: the demo spec's Config lines and reward metrics on
`benchmarks.ucb_scaling.synthetic_log`'s tree, scored by the demo objective) and a single
chain (`synthetic_log(n, "chain")`, a bare log scored by ``avg_slope_ratio``). Each
figure of agent/review/plots.py is rendered once (PNG; the tree also writes its SVG) and
reported with its CPU and wall seconds, its PNG size in pixels and its smallest text.

    python -m benchmarks.review_figures [--sizes 48 500 5000] [--out DIR]

`render_figures` and `campaign_files` are what tests/test_review_scale.py renders with.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from unittest import mock

import matplotlib.image
from matplotlib.text import Text

import ucb.plot
from agent.review import plots
from agent.review.folder import ExplorationFiles
from agent.spec import load_spec
from benchmarks.overhead import campaign_log
from benchmarks.tasks import REPO
from benchmarks.ucb_scaling import synthetic_log

SIZES = (48, 500, 5000)
CHAIN_METRIC = "avg_slope_ratio"
RENDERERS = {
    "progress": plots.progress,
    "parameters": plots.parameter_scatter,
    "stability": plots.stability_map,
    "tree": plots.tree,
}


def campaign_files(folder: Path, entries: int) -> ExplorationFiles:
    """``folder`` made an exploration folder of ``entries`` log entries (the spec copied as a driver leaves it)."""
    spec_path = REPO / "configs" / "demo.yaml"
    spec = load_spec(spec_path, {"trainer.base_config": "metabolism/tiny.yaml"})
    (folder / "spec.yaml").write_text(spec_path.read_text())
    (folder / "demo_analysis.md").write_text(campaign_log(entries, spec))
    return ExplorationFiles.open(folder)


def chain_files(folder: Path, entries: int) -> ExplorationFiles:
    """A bare log of ``entries`` entries in ``folder``, each the child of the one before."""
    log = folder / "chain_analysis.md"
    log.write_text(synthetic_log(entries, "chain"))
    return ExplorationFiles.open(folder, None, log, CHAIN_METRIC)


def render_figures(files: ExplorationFiles, out: Path, names: Iterable[str] = tuple(RENDERERS)) -> dict[str, tuple]:
    """name -> (matplotlib Figure, PNG path, CPU s, wall s); a figure the data does not call for is left out."""
    captured, results = {}, {}
    save, tree_figure = plots._save, ucb.plot.tree_figure

    def keep_and_save(figure, path):
        captured[path.stem] = figure
        return save(figure, path)

    def keep_tree(*args, **kwargs):
        captured["tree"] = tree_figure(*args, **kwargs)
        return captured["tree"]

    with mock.patch.object(plots, "_save", keep_and_save), mock.patch.object(ucb.plot, "tree_figure", keep_tree):
        for name in names:
            cpu, wall = time.process_time(), time.perf_counter()
            path = RENDERERS[name](files, out / f"{name}.png")
            if path is not None:
                results[name] = (captured[name], path, time.process_time() - cpu, time.perf_counter() - wall)
    return results


def drawn_texts(figure) -> list[Text]:
    return [text for text in figure.findobj(Text) if text.get_visible() and text.get_text().strip()]


def rows(label: str, files: ExplorationFiles, out: Path, names: Iterable[str]) -> list[str]:
    lines = []
    for name, (figure, path, cpu, wall) in render_figures(files, out, names).items():
        height, width = matplotlib.image.imread(path).shape[:2]
        smallest = min(text.get_fontsize() for text in drawn_texts(figure))
        cells = [label, f"{len(files.entries):,}", name, f"{width} x {height}", f"{smallest:g}", f"{cpu:.2f}"]
        lines.append("| " + " | ".join(cells + [f"{wall:.2f}"]) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--out", type=Path, help="keep the figures here (default: a temporary folder)")
    options = parser.parse_args(argv)
    out = options.out or Path(tempfile.mkdtemp(prefix="review_figures_"))
    print(f"Python {platform.python_version()}, {platform.machine()}; figures in {out}\n")
    print("| log | entries | figure | PNG px | smallest text pt | CPU s | wall s |")
    print("| --- | ---: | --- | --- | ---: | ---: | ---: |")
    for size in options.sizes:
        for label, make, names in (("campaign", campaign_files, RENDERERS), ("chain", chain_files, ["tree"])):
            folder = out / f"{label}_{size}"
            folder.mkdir(parents=True, exist_ok=True)
            print("\n".join(rows(label, make(folder, size), folder / "report", names)), flush=True)


if __name__ == "__main__":
    main()
