"""Modules of the model-lifecycle tests: a model whose behaviour each version sets."""
