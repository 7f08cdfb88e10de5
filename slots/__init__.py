"""Slots: per-slot configs, the job journal, the folder lock, and the launchers (local, SLURM).

See docs/ARCHITECTURE.md, section slots/, for the contract with the agent.
"""
