"""Example strategy files, written as a user writes one (only ``from engine.strategy import ...``).

Load one by file (``--strategy engine/strategy/examples/ema_rsi.py:EmaRsi``) or by module
(``--strategy engine.strategy.examples.ema_rsi:EmaRsi``); copy one as the start of your own.
"""
