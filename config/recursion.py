"""The interpreter's recursion limit, put back after libraries that raise it.

py_ecc (imported by eth-account) sets it to 100,000 and py-evm (the embedded EVM) to 12,288 when
they are imported. C code that recurses (the ``json`` parser, ``repr`` of nested containers) then
overflows the thread's C stack and the process dies with SIGSEGV before Python can raise
``RecursionError``. Crowdmint needs neither deep recursion: the EVM only recurses per nested
contract call, and ours make at most two.
"""

from __future__ import annotations

import sys

RECURSION_LIMIT = 2000


def restore_recursion_limit() -> None:
    """Import the libraries that raise the limit (once per process), then set ours."""
    import eth_account  # noqa: F401  (imports py_ecc, which raises the limit on import)

    sys.setrecursionlimit(RECURSION_LIMIT)
