"""One store per area of the console: every query of that area is here.

Views and services call stores; no view runs SQL. An area reaches another area's data
through that area's store (tests/test_layers.py checks both rules).
"""
