"""A small GFlowNet trained with Trajectory Balance on short peptides (seed 004).

`python -m trainers.gflownet --config FILE --run-dir DIR`. Modules: `config` (defaults and
checks), `reward` (a cheap fixed reward; its hidden motifs go to the evaluation only),
`policy` (the transformer forward policy, sampling and trajectory log-probabilities),
`evaluate` (sample statistics and modes found), `train` (the loop and the run),
`describe` (visual.json -> the log's Visual line).
"""
