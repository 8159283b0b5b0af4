"""Paired: two handlers of one topic, one with a model that is never built."""
