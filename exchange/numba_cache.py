"""numba's on-disk cache for kernels that call kernels of other files.

numba keys a cached function on the source of **its own file** only. A cached function
that calls a compiled function of another file carries that callee's machine code
inside its cache entry, so after an edit of the callee's file it would keep running the
old code. :func:`depends_on` fixes that for a module: its functions are cached with a
source stamp covering its own file *and* the files it names, so editing any of them
recompiles its kernels on the next start.

Call it at the top of the module, before its first ``@njit(cache=True)``::

    from exchange.numba_cache import depends_on
    depends_on(__file__, engine_kernel.__file__)

The cache files live where numba would put them (``NUMBA_CACHE_DIR`` if set, else the
module's ``__pycache__``). If that directory is not writable the module falls back to
numba's own locators (and their own-file stamp), as numba does.
"""

from __future__ import annotations

import os
from typing import Any

from numba.core import caching, config

#: module file (absolute) -> the other source files its cached kernels embed
_DEPENDS: dict[str, tuple[str, ...]] = {}


def _stamp(path: str) -> Any:
    st = os.stat(path)
    return caching._hash_source_file(path, st.st_mtime, st.st_size)


class DependentCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """A numba cache locator whose source stamp covers the module file and the files
    registered for it with :func:`depends_on` (a content hash of each)."""

    def __init__(self, py_func: Any, py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        if config.CACHE_DIR:
            sub = self.get_suitable_cache_subpath(py_file)
            self._cache_path = os.path.join(config.CACHE_DIR, sub)
        else:
            self._cache_path = os.path.join(os.path.dirname(py_file), "__pycache__")

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> Any:
        deps = _DEPENDS[os.path.abspath(self._py_file)]
        return (super().get_source_stamp(), tuple(_stamp(p) for p in deps))

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        if os.path.abspath(py_file) not in _DEPENDS:
            return None
        return super().from_function(py_func, py_file)


def depends_on(module_file: str, *files: str) -> None:
    """Cache the kernels of ``module_file`` with a stamp that also covers ``files``.
    Idempotent; must run before the module's first cached ``@njit``."""
    _DEPENDS[os.path.abspath(module_file)] = tuple(os.path.abspath(f) for f in files)
    classes = caching.CacheImpl._locator_classes
    if DependentCacheLocator not in classes:
        classes.insert(0, DependentCacheLocator)


__all__ = ["DependentCacheLocator", "depends_on"]
