"""Simulators for running the real agent offline: the Bot API emulator and the fake exchange.

* ``sim.botapi``: a local Telegram Bot API server (``python -m sim.botapi``), driven through a control API;
* ``sim.exchange``: a local Binance-style exchange serving real candles (``python -m sim.exchange``).

They ship with the package because ``trading-agent chat`` (``make demo``) and the tests run on them; the
engine never imports them.
"""
