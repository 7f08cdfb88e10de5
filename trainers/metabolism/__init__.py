"""Built-in trainer: seed 003's homeostasis recovery (simulator, Phase 1, Phase 2, evaluation).

simulator.py (data and ground truth, cached), model.py (log_k, MLP_sub, MLP_node,
embeddings), phase1.py, phase2.py, strategies.py (the eight Phase 2 strategies),
evaluate.py (the only reader of the ground truth), plots.py, describe.py (Visual line),
config.py, train.py (one run, top to bottom), __main__.py (the command line).
"""
