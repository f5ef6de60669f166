"""``python -m sim.exchange --csv data/sample/BTC_USDT-5m.csv [--personality okx] --port 8081 --speed 60``."""

import sys

from sim.exchange.cli import main

sys.exit(main())
