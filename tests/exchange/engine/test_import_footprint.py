"""The engine's warm start (bench ``warm_start_s``, target < 0.5 s) depends on what
importing it drags in: the contract specs' pydantic models are not needed to match."""

import subprocess
import sys


def test_engine_import_does_not_load_pydantic_or_contract_specs() -> None:
    # Arrange: a fresh interpreter, so modules other tests imported do not count
    code = (
        "import sys, exchange.engine.book, exchange.engine.config;"
        "print(sorted(m for m in ('pydantic', 'contracts.spec', 'contracts.calendar')"
        " if m in sys.modules))"
    )
    # Act
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Assert
    assert out.stdout.strip() == "[]"


def test_contracts_package_still_exports_its_public_names() -> None:
    import contracts

    # Act / Assert: every public name resolves lazily, unknown names still raise
    for name in contracts.__all__:
        assert getattr(contracts, name) is not None
    try:
        contracts.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("unknown attribute did not raise")
