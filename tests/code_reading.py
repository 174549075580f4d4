"""Reading the project's own code in tests: what is a docstring, so a check can skip prose."""

from __future__ import annotations

import ast


def docstring_ids(tree: ast.Module) -> set[int]:
    """ids of the constant nodes that are docstrings (module, class or function), to skip as prose."""
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
