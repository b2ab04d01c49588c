"""Batch runs over a task suite: `synth-reward batch SUITE`.

Every task of a suite goes through the same agent loop as one instruction does, each in its
own run folder under one batch folder, scheduled by an executor (local processes or a Ray
cluster) and summarised in one table (Markdown, CSV and an HTML page with plots).

- batch/records.py: the batch record (batch.json) and the table's rows;
- batch/batch.py: creating, opening and running a batch; a unit of work is one task's run;
- batch/executors.py: where units run (a pool of local processes, or Ray tasks);
- batch/table.py: the final table and the live overview's rows;
- batch/cli.py: the command.

This package imports the agent; the agent never imports it (docs/architecture.md).
"""
