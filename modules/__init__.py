"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The ML modules: every sub-folder with an expose.py is one, found by convention.
Tagline: A folder is a module; nothing else to register.
"""
