"""``exchange.numba_cache.depends_on``: a cached kernel that calls another file's kernel
is recompiled when that file changes (numba alone would keep the old callee's code)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CALLEE = """
from numba import njit

@njit(cache=True)
def g(x):
    return x + {inc}
"""

CALLER = """
{register}
from numba import njit
from callee import g

@njit(cache=True)
def f(x):
    return g(x) * 2
"""

REGISTER = """
import callee
from exchange.numba_cache import depends_on
depends_on(__file__, callee.__file__)
"""

RUN = """
import sys
sys.path[:0] = [{pkg!r}, {root!r}]
import {mod}
print({mod}.f(1), {mod}.f.stats.cache_hits.most_common(1)[0][1] if {mod}.f.stats.cache_hits else 0)
"""


def _run(pkg: Path, mod: str) -> tuple[int, int]:
    """(f(1), cache hits) in a fresh interpreter."""
    code = RUN.format(pkg=str(pkg), root=str(ROOT), mod=mod)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    value, hits = out.stdout.split()
    return int(value), int(hits)


def _write(pkg: Path, inc: int) -> None:
    (pkg / "callee.py").write_text(textwrap.dedent(CALLEE.format(inc=inc)))


def test_a_dependent_kernel_loads_from_the_cache_and_recompiles_when_its_callee_changes(
    tmp_path: Path,
) -> None:
    # Arrange: a caller registered as depending on the callee's file, and one that is not
    _write(tmp_path, 1)
    (tmp_path / "caller.py").write_text(CALLER.format(register=REGISTER))
    (tmp_path / "plain.py").write_text(CALLER.format(register=""))
    assert _run(tmp_path, "caller") == (4, 0)  # compiled
    assert _run(tmp_path, "plain") == (4, 0)
    assert _run(tmp_path, "caller") == (4, 1)  # loaded from the cache
    # Act: the callee's file changes
    _write(tmp_path, 2)
    # Assert: the registered caller sees the new callee; numba alone serves stale code
    assert _run(tmp_path, "caller") == (6, 0)
    assert _run(tmp_path, "caller") == (6, 1)
    assert _run(tmp_path, "plain") == (4, 1)
