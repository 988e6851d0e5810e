"""The pure model of rqdag: tasks, results, workflows, graph checks, codec and snapshots.

Nothing here imports Redis.
"""
