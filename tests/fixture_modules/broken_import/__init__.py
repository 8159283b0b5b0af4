"""Test fixture module broken_import."""
