"""WHAT a procedure is: models, strict YAML loading with positions, forms, expressions, checks.

No database and no clock here; only reading files.
"""
