"""Package discovery for the three import packages of the vtgcore distribution.

``vtgcore`` lives in ``vtgcore/``; the shipped recipes are ``vtgcore_recipes`` (``recipes/``, YAML as
package data); the first-party plugins are the import package
``vtgcore_plugins`` in the folder ``plugins/`` (never a top-level ``plugins`` import).
setuptools' own ``find_namespace_packages`` finds every sub-package, so adding a folder needs no edit
here. It also finds the folders that hold only data (``vtgcore/data/prompts/v1``,
``recipes/components/encoder`` ...): they are packages whose files are package data, so setuptools
packages them without a "data-only package would be ignored" warning. Everything else (metadata,
dependencies, which data files ship) is in ``pyproject.toml``.
"""

from setuptools import find_namespace_packages, setup

FOLDERS = {"vtgcore": "vtgcore", "vtgcore_plugins": "plugins", "vtgcore_recipes": "recipes"}
EXCLUDE = ("__pycache__", "*.__pycache__", "*.egg-info", "build", "build.*")


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in FOLDERS.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_namespace_packages(where=folder, exclude=EXCLUDE)]
        package_dir[name] = folder
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
