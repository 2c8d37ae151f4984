"""Algorithms, one module each, every one runnable as ``python -m algos.<name>``.

Import from the module (``from algos.mdpo import MDPO``) so that only what you use is loaded.
"""
