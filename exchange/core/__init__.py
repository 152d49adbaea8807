"""The gateway's compiled order-entry core: order-entry state in arrays, and numba kernels
that decode, check, risk-check and answer orders around the matching engine.

``tables`` holds the state, ``kernel`` the compiled code, ``driver`` the Python
gateway-shaped class over them. See ``docs/gateway.md`` ("The compiled core").
"""
