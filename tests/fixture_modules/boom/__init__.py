"""Test fixture module boom."""
