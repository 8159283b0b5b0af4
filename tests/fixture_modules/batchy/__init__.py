"""Test fixture module batchy."""
