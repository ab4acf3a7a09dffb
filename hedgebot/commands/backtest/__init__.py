"""`hedgebot backtest`: the command (command), its inputs and replay (replay), its files (outputs, chart),
a beta hedge's figures (beta), a put hedge's replay (put) and the parallel sweep (sweep).
"""
