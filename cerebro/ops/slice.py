"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``cerebro slice <module> <dir>``: one module as a self-contained, deployable folder.
Tagline: An evening's work, done in a second: Vigilante moves out with its own keys.

The folder holds the module's code (``modules/__init__.py`` + ``modules/<name>/``),
a ``pyproject.toml`` depending on the Cerebro platform package, a ``Dockerfile``
(FROM the platform image), a ``supervisord.conf`` running the services the module
needs (the program table's rows whose ``needed_by`` says so), restricted to it
(``CEREBRO_MODULES=<name>``), and a README. The module
keeps its name, so clients keep the same URL paths (``/v1/<name>/<function>``),
Kafka topics and queues.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cerebro import __version__ as PLATFORM_VERSION
from cerebro.ops import conf, programs

if TYPE_CHECKING:
    from cerebro.ops.programs import Program
    from cerebro.registry import Module
    from cerebro.settings import Settings


class SliceError(Exception):
    """The module cannot be sliced (unknown, broken) or the folder is not usable."""


def _module_folder(settings: Settings, name: str) -> tuple[Path, Module]:
    """The folder and the registry entry of module ``name``."""
    from cerebro.core import Core
    core = Core.start("slice", settings.replace(modules=(name,)), load=False, watch=False,
                      configure_logging=False)
    module = core.registry.modules.get(name)
    if module is None or module.import_error:
        reason = module.import_error if module else "not found"
        raise SliceError(f"module {name!r} cannot be sliced: {reason}")
    return Path(module.path), module


def _programs(module: Module) -> list[Program]:
    """The program rows the module needs (their ``needed_by`` says so), in table order."""
    return [row for row in programs.table() if row.needed_by is not None and row.needed_by(module)]


# The image's health check: every program of the slice's supervisord RUNNING and ready (the
# readiness probes of `cerebro up`), not just the API's /healthz (see docs/docker.md).
_HEALTHCHECK_CMD = '["/opt/venv/bin/cerebro", "health"]'


def dockerfile(name: str) -> str:
    """The slice's Dockerfile: FROM the platform image, this module only."""
    conf = f"/srv/{name}/supervisord.conf"
    return f"""# The {name} slice: the Cerebro platform image (pinned) with only this module served.
# Build: docker build -t cerebro-{name}:0.1.0 .
ARG CEREBRO_IMAGE=cerebro:{PLATFORM_VERSION}
FROM ${{CEREBRO_IMAGE}}
WORKDIR /srv/{name}
COPY . /srv/{name}
ENV CEREBRO_MODULES={name} \\
    PYTHONPATH=/srv/{name}
USER 10001:10001
# healthy: every program of this slice's supervisord RUNNING and ready (cerebro health)
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \\
  CMD {_HEALTHCHECK_CMD}
ENTRYPOINT ["/opt/venv/bin/supervisord", "--nodaemon", "--configuration", "{conf}"]
"""


def pyproject(name: str, platform: str) -> str:
    """A pyproject.toml depending on the platform package."""
    return f"""[build-system]
requires = ["setuptools>=68", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "cerebro-{name.replace('_', '-')}"
version = "0.1.0"
description = "The {name} module of Cerebro, deployed on its own."
requires-python = ">=3.10"
dependencies = ["{platform}"]

[tool.setuptools.packages.find]
include = ["modules*"]
"""


def readme(name: str, programs: Sequence[str], topics: Sequence[str], functions: Sequence[str],
           platform: str) -> str:
    """The slice's README."""
    calls = "\n".join(f"    POST /v1/{name}/{f}" for f in functions)
    image = f"cerebro:{PLATFORM_VERSION}"
    return f"""# {name} (a Cerebro slice)

The `{name}` module cut out of Cerebro by `cerebro slice {name}`, to be deployed on its own.
It is served by the same platform, so clients keep the same URLs:

{calls}
    GET  /healthz, /readyz, /v1/modules, /metrics, /openapi.json

Kafka topics: {', '.join(topics) or 'none'}. Supervisor programs: {', '.join(programs)}.

## Contents

| path | what |
|---|---|
| `modules/{name}/` | the module's code (expose.py, src/, README) |
| `pyproject.toml` | this package; depends on the platform: `{platform}` |
| `supervisord.conf` | runs {', '.join(programs)} with `CEREBRO_MODULES={name}` |
| `Dockerfile` | `FROM {image}` (the platform image), this folder on `PYTHONPATH` |

The platform dependency is pinned to the version this slice was cut from
(`cerebro=={PLATFORM_VERSION}`, from the team's package index or a wheel); pass
`cerebro slice {name} DIR --platform 'cerebro @ file:///path/to/cerebro'` (or a git URL) for
another source. The Dockerfile gets the platform from the platform image instead.

## Run

```bash
pip install -e .                       # the platform comes with it
CEREBRO_DATA_VOLUME=/data cerebro build {name}          # or share Cerebro's data volume
PYTHONPATH=$PWD CEREBRO_MODULES={name} cerebro serve    # just the REST API, or everything:
mkdir -p var logs && CEREBRO_BIN=$(dirname $(which cerebro)) CEREBRO_STATE_DIR=$PWD/var \\
  CEREBRO_LOG_DIR=$PWD/logs CEREBRO_CALLBACK_SECRET=... supervisord -c supervisord.conf
docker build -t cerebro-{name}:0.1.0 . && docker run -v cerebro-data:/data cerebro-{name}:0.1.0
```

The image's `HEALTHCHECK` is `cerebro health`: healthy once every program of `supervisord.conf`
is RUNNING and ready (the API's `/readyz`, the subscriber's queues consumed, the consumer's
partitions assigned), not merely alive.

Settings are Cerebro's (`cerebro settings`): the broker addresses, `CEREBRO_PORT`,
`CEREBRO_KAFKA_GROUP` (give the slice its own group if Cerebro still consumes other topics),
`CEREBRO_CALLBACK_SECRET` and `CEREBRO_MAIN_APP_URL` for the main-app calls.
"""


def write_slice(settings: Settings, name: str, target: str | Path, platform: str | None = None,
                force: bool = False) -> Path:
    """Write the slice of module ``name`` into ``target``; return the folder."""
    source, module = _module_folder(settings, name)
    target = Path(target)
    if target.exists() and any(target.iterdir()) and not force:
        raise SliceError(f"{target} is not empty (use --force)")
    platform = platform or f"cerebro=={PLATFORM_VERSION}"
    (target / "modules").mkdir(parents=True, exist_ok=True)
    package_init = source.parent / "__init__.py"
    shutil.copyfile(package_init, target / "modules" / "__init__.py")
    shutil.copytree(source, target / "modules" / name, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    rows = _programs(module)
    topics = sorted({t for e in module.endpoints.values() for t in e.topics})
    (target / "supervisord.conf").write_text(conf.slice_conf(name, rows))
    (target / "Dockerfile").write_text(dockerfile(name))
    (target / "pyproject.toml").write_text(pyproject(name, platform))
    (target / "README.md").write_text(readme(name, [row.name for row in rows], topics,
                                             sorted(module.endpoints), platform))
    (target / ".dockerignore").write_text("var\nlogs\n**/__pycache__\n")
    return target
