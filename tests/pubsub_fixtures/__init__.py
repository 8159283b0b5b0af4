"""Modules for the pub-sub tests (CEREBRO_MODULES_PACKAGE=pubsub_fixtures)."""
