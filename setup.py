"""What pyproject.toml cannot say: the top-level ``protocols/`` and ``constitutions/`` folders (the source of truth)
ship inside the wheel as package data under ``stability/_data/``, found through importlib.resources by
``stability/resources.py``. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

DATA = {"stability._data.protocols": "protocols", "stability._data.constitutions": "constitutions"}

setup(
    packages=find_namespace_packages(include=["stability", "stability.*"], exclude=["*.__pycache__"]) + list(DATA),
    package_dir=DATA,
    package_data={"stability": ["py.typed"], **{package: ["**/*"] for package in DATA}},
)
