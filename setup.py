"""What pyproject.toml cannot say: the top-level ``protocols/`` and ``constitutions/`` folders (the source of truth)
ship inside the wheel as package data under ``stability/_data/``, where ``stability/resources.py`` finds them
through importlib.resources. Each of their folders is mapped to a data-only package (``protocols/specs`` to
``stability._data.protocols.specs``), so that every file is package data. Everything else is in pyproject.toml."""

from pathlib import Path

from setuptools import find_namespace_packages, setup


def data_packages(*folders: str) -> dict[str, str]:
    return {".".join(("stability", "_data", *sub.parts)): sub.as_posix()
            for folder in folders for sub in [Path(folder), *sorted(Path(folder).rglob("*"))]
            if sub.is_dir() and "__pycache__" not in sub.parts}


DATA = data_packages("protocols", "constitutions")

setup(
    packages=find_namespace_packages(include=["stability", "stability.*"], exclude=["*.__pycache__"]) + list(DATA),
    package_dir=DATA,
    # the viewer's page, scripts and bundled cytoscape.js (stability/view/static/, with its NOTICE)
    package_data={"stability": ["py.typed"], "stability.view.static": ["*"], **{package: ["*"] for package in DATA}},
)
