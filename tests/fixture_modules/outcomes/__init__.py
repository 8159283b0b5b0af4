"""The outcome contract fixture module."""
