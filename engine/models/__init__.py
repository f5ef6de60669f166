"""Learned models: windowed causal features, labels, the CatBoost model, validation, registry, ensemble.

Modules are imported on demand (``engine.models.catboost_model`` imports catboost only when a model is
fitted, loaded or checked), so importing this package is cheap.
"""
