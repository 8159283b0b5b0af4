"""Small modules for tests: CEREBRO_MODULES_PACKAGE=fixture_modules with tests/ on PYTHONPATH."""
