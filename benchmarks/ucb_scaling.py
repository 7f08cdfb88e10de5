"""Cost of parse + tree + scores as the analysis log grows (1,000 to 100,000 entries).

Writes synthetic logs in the entry shape (with planning text between batches, seed
replicates, failed runs and in-flight jobs), then times, separately and best of
``--repeat`` runs: parsing the log, building the tree, computing PUCT, formatting the
scores file. Two tree shapes: ``bushy`` (each node branches from one of the 50 latest
nodes) and ``chain`` (every node is the child of the previous one: the worst case
for a per-node walk up the ancestors, which this implementation avoids).

    python -m benchmarks.ucb_scaling [--sizes 1000 10000 100000] [--repeat 3]

The cost is linear when the microseconds per entry stay flat across sizes.
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import time

from memory.notebook import Entry, format_entry, parse_notebook
from ucb.scores import format_scores, puct, scores_header, total_visits
from ucb.tree import Tree

PLANNING = "### Batch {batch} Summary\n\nSlots 0-3 explored lr; next batch exploits the best node.\n\n"


def synthetic_log(n: int, shape: str, seed: int = 0) -> str:
    """An analysis log of ``n`` entries, four per batch, planning text between batches."""
    rng = random.Random(seed)
    parts = []
    for node_id in range(1, n + 1):
        if node_id % 4 == 1:
            parts.append(PLANNING.format(batch=node_id // 4 + 1))
        if shape == "chain":
            parent = node_id - 1 or None
        else:
            parent = rng.randint(max(1, node_id - 50), node_id - 1) if node_id > 1 else None
        ratio = math.nan if node_id % 29 == 0 else rng.lognormvariate(0, 0.5)
        entry = Entry(
            iteration=node_id,
            status="partial",
            node_id=node_id,
            parent=parent,
            mode="replicate" if node_id % 13 == 0 and parent else "exploit",
            slot=node_id % 4,
            slot_label=f"time_step={4 ** (node_id % 4)}",
            config={"lr_node_homeo": f"{rng.uniform(1e-3, 1e-1):.3g}", "data_aug": str(rng.randint(100, 5000))},
            metrics={"avg_slope_ratio": ratio, "rate_constants_R2": rng.random(), "phase2_loss": rng.random()},
            visual="MLP_node=active, Embeddings=separated",
            mutation="lr_node_homeo: 0.01 -> 0.03",
            strategy="hyperparameter-only",
            observation="synthetic entry",
            next_parent=parent,
        )
        parts.append(format_entry(entry))
    return "".join(parts)


def best_of(repeat: int, action):
    """(seconds of the fastest run, the result of the last run)."""
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(n: int, shape: str, repeat: int) -> dict[str, float]:
    text = synthetic_log(n, shape)
    parse_s, parsed = best_of(repeat, lambda: parse_notebook(text))
    in_flight = [(n + slot + 1, n - slot) for slot in range(4)]
    tree_s, tree = best_of(
        repeat, lambda: Tree.from_entries(parsed.entries, metric="avg_slope_ratio", in_flight=in_flight)
    )
    puct_s, scores = best_of(repeat, lambda: puct(tree, 1.414))
    header = scores_header(total_visits(tree), 1.414)
    format_s, _ = best_of(repeat, lambda: format_scores(scores, tree, header, (("ratio", "avg_slope_ratio"),)))
    total = parse_s + tree_s + puct_s + format_s
    return {
        "entries": n,
        "shape": shape,
        "lines": text.count("\n"),
        "nodes": len(tree.nodes),
        "parse_s": parse_s,
        "tree_s": tree_s,
        "puct_s": puct_s,
        "format_s": format_s,
        "total_s": total,
        "us_per_entry": total / n * 1e6,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--shapes", nargs="+", default=["bushy", "chain"])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    print(f"# python {platform.python_version()}, {platform.machine()}, best of {options.repeat}")
    print("| shape | entries | log lines | nodes | parse s | tree s | puct s | format s | total s | µs/entry |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for shape in options.shapes:
        for n in options.sizes:
            row = measure(n, shape, options.repeat)
            print(
                f"| {shape} | {n:,} | {row['lines']:,} | {row['nodes']:,} | {row['parse_s']:.3f} | "
                f"{row['tree_s']:.3f} | {row['puct_s']:.3f} | {row['format_s']:.3f} | {row['total_s']:.3f} | "
                f"{row['us_per_entry']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
