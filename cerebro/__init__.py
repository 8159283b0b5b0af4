"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The Cerebro platform package: what a module's expose.py needs, in one import.
Tagline: Models go in by convention and come out as services.

A module's ``expose.py`` imports its declarations from here::

    from cerebro import Field, ModelHandle, endpoint
"""

from cerebro.endpoint import Batching, endpoint
from cerebro.models import ModelHandle
from cerebro.schema import Field

__all__ = ["Batching", "Field", "ModelHandle", "endpoint"]
__version__ = "0.1.0"
