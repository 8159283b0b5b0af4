"""Modules package of the in-process batch tests of the Kafka consumer (tests/kafka/test_batches.py)."""
