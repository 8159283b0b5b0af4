"""Events: a model-free module handling the ``events`` topic, for consumer tests."""
