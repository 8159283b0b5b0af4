"""Modules package for the Kafka consumer tests (CEREBRO_MODULES_PACKAGE=kafka_fixtures)."""
