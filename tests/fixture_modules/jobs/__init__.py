"""Test fixture module jobs: external (async) functions for the Celery path."""
