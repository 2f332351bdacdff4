"""Start-up imports only what the default service uses (issue 13: start-up + first poll ≤ 0.5 s CPU).

Each module named here cost start-up CPU once and is imported lazily now; a top-level import that
brings one back fails this test instead of quietly adding milliseconds to every start.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xtcp_async.cli import main

ROOT = Path(__file__).resolve().parents[2]

#: Imported on the default path no more, and why each is lazy.
DEFERRED = {
    "pydantic_settings": "config reads XTCP_* itself (~26 ms)",
    "dotenv": "came with pydantic-settings",
    "tomllib": "only with a config file",
    "difflib": "only to name the option a misspelt XTCP_* variable meant",
    "aiokafka": "the kafka sink's client, only for kafka:// sinks",
    "nsq": "pynsq, only for nsq:// sinks",
    "xtcp_async.sinks.kafka": "only for kafka:// sinks",
    "xtcp_async.sinks.nsq": "only for nsq:// sinks",
    "maxminddb": "only for a .mmdb --asn-db",
    "xtcp_async.enrich.asndb": "only with --asn-db",
    "xtcp_async.enrich.lookup": "only with --asn-db or --prefix-len",
    "xtcp_async.top": "only for `xtcp-async top`",
    "numpy.ma": "numpy 2.3's plain np.unique imports it; the per-poll summary does without (~4.5 ms)",
}

#: What cli.main does before the service runs, with the default options, then one poll's summary
#: through the TCP-health series /metrics serves by default.
CODE = """
import json, os, sys
from xtcp_async.config import load_config
from xtcp_async.health_stages import HealthStages
from xtcp_async.logs import setup_logging
from xtcp_async.service import build_sinks, run_service
from xtcp_async.stages.probe import check_kernel_filter
from xtcp_async.ops.tcp_health import TcpHealth
from tests.support.asn import capture_batch

cfg = load_config({})
build_sinks(cfg)
stages = HealthStages.from_config(cfg)
check_kernel_filter(cfg)
health = TcpHealth(max_ports=cfg.settings.metrics_ports)
stages.summary_listeners.append(health.observe)
stages.batch(capture_batch())
stages.poll_end(1, 0)
assert health.polls == 1
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.timeout(60)
def test_the_default_start_up_leaves_the_optional_modules_unimported() -> None:
    """Building the default config, sinks and stages and summarising one poll imports none of DEFERRED."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XTCP_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=50, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout))
    assert "xtcp_async.config" in loaded and "numpy" in loaded  # the check ran where it should
    imported = {name: why for name, why in DEFERRED.items() if name in loaded}
    assert not imported, f"imported on the default start-up path: {imported}"


def test_the_gc_is_back_on_after_a_config_error() -> None:
    """main() turns the cyclic GC off while it starts up and on again, also when the config is bad."""
    assert gc.isenabled()
    assert main(["--interval", "-1"]) == 2
    assert gc.isenabled()
