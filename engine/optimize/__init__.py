"""The parameter optimiser (``trading-agent optimize``): Optuna studies over a strategy's declared parameters, every
trial a backtest by the one kernel, walk-forward by default so the reported number is out-of-sample.

``space`` (what is searched), ``evaluate`` (one trial), ``objectives`` (what is maximised), ``storage`` (where a
study lives), ``search`` (a study, in this process or in worker processes), ``walkforward`` (the folds, the
stitched out-of-sample equity), ``run`` (the whole optimisation), ``report`` / ``plots`` (the output), ``apply``
(``--apply FILE.toml``), ``cli`` (the command).
"""
