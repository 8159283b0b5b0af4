"""Modules package of the Kafka consumer's in-process batch tests (tests/kafka/test_batches.py)."""
