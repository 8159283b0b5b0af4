"""A batch function on topic ``scored``, steerable by its inputs and by the test."""
