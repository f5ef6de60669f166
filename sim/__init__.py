"""Simulators for running the real agent offline: the Bot API emulator and the fake exchange.

* ``sim.botapi``: a local Telegram Bot API server (``python -m sim.botapi``), driven through a control API;
* ``sim.exchange``: a local exchange serving real candles, market rules and faults as Binance's or OKX's API, so
  that real ccxt runs against it (``python -m sim.exchange [--personality okx]``).

They ship with the package because ``trading-agent chat`` (``make demo``) and the tests run on them; the
engine never imports them.
"""
