"""What a coordinator taking a run over reads for its mapped tasks, beside the run's progress."""

from __future__ import annotations

import logging

from rqdag.coordinator.phases import STORED_SUCCESS
from rqdag.shared.model.codec import decode_result
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.store.records import RunState
from rqdag.shared.store.runs import RunStore

log = logging.getLogger("rqdag.coordinator")


def load_expansions(store: RunStore, run_id: str, table: TaskTable, run_state: RunState) -> None:
    """Add the stored children to ``table``; load the data of the sources that must still expand.

    A mapped task with a complete stored expansion gets those children back,
    never another expansion. One without, whose source has succeeded, expands
    again from the source's data (read here: the progress read loads successes
    by status only); nothing of it was dispatched before.
    """
    if not table.mapped:
        return
    for mapped, expansion in store.read_expansions(run_id).items():
        i = table.index.get(mapped)
        if i is None or i not in table.mapped or i in table.children:
            log.error("run '%s': stored children of '%s' (not a mapped task) ignored", run_id, mapped)
            continue
        table.add_children(i, expansion.names(mapped), expansion.items)
    results = run_state.results
    names = table.names
    sources = {
        source
        for m in table.mapped
        if names[m] not in results and m not in table.children
        for source in [table.task(m).map_over or ""]
        if results.get(source) is STORED_SUCCESS
    }
    wanted = sorted(sources)
    for name, raw in zip(wanted, store.read_result_values(run_id, wanted), strict=True):
        if raw is not None:
            results[name] = decode_result(raw, what=f"run '{run_id}': results field '{name}'")
