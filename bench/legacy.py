"""The hand-tuned matcher the intent model replaced, loaded from git history for comparison.

The benchmarks measure the new model beside the old matcher in the same run. The old code is
not kept in the tree (it is deleted, as the issue asked); it is read from the last commit that
had it, with that commit's thresholds and weights, and run on today's knowledge base.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The last commit with the hand-tuned matcher (bot/core/matcher.py before the intent model).
LEGACY_COMMIT = "ec01289"


def _show(path: str) -> str:
    return subprocess.run(
        ["git", "show", f"{LEGACY_COMMIT}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def legacy_matcher(kb):
    """The old Matcher over `kb`, or None (with a note on stderr) when git history is absent."""
    try:
        source = _show("bot/core/matcher.py")
        settings = yaml.safe_load(_show("knowledge/matcher.yaml"))
        calf = {m for f in ("knowledge/intents/calf.yaml", "knowledge/intents/twitching.yaml")
                for m in re.findall(r"- id: (\w+)\n    topic: calf", _show(f))}  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"old matcher unavailable ({error}); its columns are left out", file=sys.stderr)
        return None
    spec = importlib.util.spec_from_loader("bot.core.legacy_matcher", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "bot.core"
    sys.modules[spec.name] = module
    exec(compile(source, f"{LEGACY_COMMIT}:bot/core/matcher.py", "exec"), module.__dict__)
    intents = {
        i: SimpleNamespace(**intent.__dict__, topic="calf" if i in calf else None) for i, intent in kb.intents.items()
    }
    # It read danger signs where today's knowledge has triage rules: its own level, emergencies.
    signs = tuple(rule for rule in kb.triage_rules if rule.level == "emergency")
    old_kb = SimpleNamespace(**kb.__dict__, danger_signs=signs, normalizer=kb.normalizer)
    old_kb.intents, old_kb.settings = intents, SimpleNamespace(**settings)
    return module.Matcher(old_kb)
