"""The `hedgebot` command line: one module per command (or group of subcommands), built into one parser by `main`.

`args` holds what the commands share; `backtest/` is the backtest command with its replay, outputs and sweep.
"""
