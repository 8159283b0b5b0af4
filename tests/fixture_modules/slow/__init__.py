"""Test fixture module slow."""
