"""Review tools: what a person reads and looks at after (or during) an exploration.

`ucbx report|tree|show|best|check` work from the files of an exploration folder (the
log, the memory, the slot configs, the iteration folders, the folder's git history and
its copy of the spec); the parts that need only a log also work on a bare
``<name>_analysis.md``. Nothing here writes to the files the agent reads.
"""
