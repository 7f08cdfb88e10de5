"""The product: the exploration agent (spec, policy, driver, provenance, live view, CLI).

Data flows `slots -> memory -> ucb -> agent -> slots`: the driver (`agent.driver`) reads
finished jobs from the journal, writes their log entries, rebuilds the UCB tree, asks the
policy (`agent.policy`) for one proposal per free slot, and launches them.
"""
