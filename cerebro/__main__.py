"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``python -m cerebro`` runs the command-line interface.
Tagline: The same front door, by another name.
"""

from cerebro.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
