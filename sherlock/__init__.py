"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Sherlock, the team's exception logger: capture every exception, mail a daily digest.
Tagline: Every exception leaves footprints.

Capture, in every service (``cerebro.logsetup.configure`` does it)::

    import sherlock
    sherlock.install("api")          # root-logger handler: ERROR + exc_info

and in scripts::

    @sherlock.watch(service="build", module="churn")
    def main(): ...

    with sherlock.watching(service="build", module="churn"):
        ...

The digest: ``sherlock digest --hours 24`` (see ``sherlock/README.md``).
"""

from sherlock.handler import SherlockHandler, capture, install, uninstall, watch, watching
from sherlock.settings import SherlockSettings, load_settings

__all__ = ["SherlockHandler", "SherlockSettings", "capture", "install", "load_settings",
           "uninstall", "watch", "watching"]
