"""The closed-loop study as an application: a simulated world, an office working on it, and a runner.

- `loop.world`: the world side: the truth, and what an inspection finds in it;
- `loop.office`: the office side: choose a list, ingest the outcomes, retrain,
  promote; it never sees the truth (tests/test_loop_layers.py);
- `loop.evaluation`: the truth beside the office's decisions (checks only);
- `loop.run`: the runner, the only module that wires the world and the office
  together (`run_loop`, `LoopConfig`, `POLICIES`, `render_result`);
- `loop.report`: totals, means over seeds, paired differences, CSVs, the plot.
"""
