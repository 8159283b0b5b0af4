"""The stack's generated secrets file is readable by its owner only, even when it existed before
with a looser mode."""

import os

from cerebro.ops.supervise import load_secrets
from cerebro.settings import load_settings


def test_secrets_env_is_0600_when_created_and_when_rewritten(tmp_path):
    """A secrets.env left 0644 (by hand, an older version) is 0600 after the next `cerebro up`,
    whether it gained a secret or not."""
    settings = load_settings({"CEREBRO_STATE_DIR": str(tmp_path)})
    path = tmp_path / "secrets.env"
    path.write_text("CEREBRO_CALLBACK_SECRET=kept-as-it-is-0123456789\n")
    path.chmod(0o644)
    generated = load_secrets(settings, {})
    assert "CEREBRO_CALLBACK_SECRET" in generated and path.stat().st_mode & 0o777 == 0o600
    assert "kept-as-it-is-0123456789" in path.read_text()
    path.chmod(0o644)
    load_secrets(settings, {})   # nothing new to write
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.access(path, os.R_OK)
