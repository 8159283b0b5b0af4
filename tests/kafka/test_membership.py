"""Group instance ids (static membership), in process and across real processes: two consumers
of a group on one host never get the same id, a process killed with SIGKILL leaves its id to its
successor, ``off`` turns static membership off, and ids Kafka refuses fail loudly."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from cerebro.consumer.membership import Membership, lock_dir, lock_path
from cerebro.settings import ConfigurationError
from kafka_broker import fresh_name

HOST = socket.gethostname()
HOLD = """
import sys, time
from cerebro.consumer.membership import Membership
held = Membership.claim(sys.argv[1], sys.argv[2])
print(held.instance_id, flush=True)
time.sleep(60)
"""


def _holder(setting, group):
    """A process claiming ``setting`` in ``group`` and holding it; returns (process, its id)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, setting, group], stdout=subprocess.PIPE,
                            text=True)
    return proc, proc.stdout.readline().strip()


def test_auto_ids_are_unique_per_process_and_reused_after_a_stop():
    """Side by side: <host>-0 then <host>-1; a released number is the next one given."""
    group = fresh_name("group")
    first, second = Membership.claim("auto", group), Membership.claim("auto", group)
    try:
        assert first.instance_id.endswith("-0") and second.instance_id.endswith("-1")
        assert first.instance_id.startswith(HOST.split(".")[0])
        first.release()
        again = Membership.claim("auto", group)
        assert again.instance_id == first.instance_id
        again.release()
        assert Membership.claim("auto", fresh_name("other")).instance_id.endswith("-0")
    finally:
        first.release()
        second.release()


def test_a_process_killed_with_sigkill_leaves_its_id_to_its_successor():
    """The kernel drops a dead process's lock: a restart (kill -9, then start) gets the same id,
    while a live holder keeps its id from everyone else."""
    group = fresh_name("group")
    proc, held = _holder("auto", group)
    try:
        assert held.endswith("-0")
        other = Membership.claim("auto", group)
        assert other.instance_id.endswith("-1")
        other.release()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        successor = Membership.claim("auto", group)
        assert successor.instance_id == held
        successor.release()
        assert not lock_path(lock_dir(), group, held).exists()  # a clean stop tidies up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_off_is_dynamic_membership_and_templates_are_filled_in():
    """off (or empty) gives no id; {host} and {n} are filled in; a literal id is taken as is."""
    group = fresh_name("group")
    assert Membership.claim("off", group).instance_id is None
    assert Membership.claim("", group).instance_id is None
    numbered = Membership.claim("worker-{n}", group)
    literal = Membership.claim("pod-7", group)
    try:
        assert numbered.instance_id == "worker-0" and literal.instance_id == "pod-7"
        with pytest.raises(ConfigurationError, match="pod-7 is in use by another consumer"):
            Membership.claim("pod-7", group)
    finally:
        numbered.release()
        literal.release()


def test_ids_kafka_refuses_are_configuration_errors():
    """Characters a group instance id may not hold are refused before any broker sees them."""
    with pytest.raises(ConfigurationError, match="CEREBRO_KAFKA_INSTANCE_ID"):
        Membership.claim("bad id/{n}", fresh_name("group"))


def test_lock_files_hold_any_group_name():
    """Group names may hold characters no file name may: the lock file is named by a digest."""
    held = Membership.claim("auto", "a/group with spaces:" + "x" * 300)
    try:
        assert held.instance_id is not None
    finally:
        held.release()
