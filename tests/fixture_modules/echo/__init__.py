"""Test fixture module echo."""
