"""`crisiswatch backtest`: the worker's decision code replayed in process over a history, with a report."""
