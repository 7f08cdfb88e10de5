"""Differentiable DAG structure learning on a synthetic SEM (seeds 001 and 002).

`python -m trainers.causal --config FILE --run-dir DIR`. Modules: `config` (defaults and
checks), `data` (the SEM: observations for training, the true graph for evaluation only),
`model` (gated per-variable MLPs and the four loss terms), `train` (the loop and the run),
`evaluate` (the 21-threshold sweep against the true graph, after training),
`describe` (visual.json -> the log's Visual line).
"""
