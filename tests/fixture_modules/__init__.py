"""Small modules for tests: set CEREBRO_MODULES_PACKAGE=fixture_modules with tests/ on PYTHONPATH."""
