"""The licence boundary: the only package that imports BUSL-1.1 code (sdv, ctgan, rdt, copulas).

Those libraries may not be offered as a synthetic-data service; keeping them in this one folder
makes that obligation easy to see and to audit (the "busl" import contract in pyproject.toml enforces it).
"""
