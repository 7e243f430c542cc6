"""Package discovery for the three import packages of the vtgcore distribution.

``vtgcore`` lives in ``vtgcore/``; the shipped recipes are ``vtgcore_recipes`` (``recipes/``, YAML as
package data); the first-party plugins are the import package
``vtgcore_plugins`` in the folder ``plugins/`` (DESIGN.md: never a top-level ``plugins`` import).
setuptools' own ``find_packages`` finds every sub-package, so adding a folder needs no edit here.
Everything else (metadata, dependencies, package data) is in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

FOLDERS = {"vtgcore": "vtgcore", "vtgcore_plugins": "plugins", "vtgcore_recipes": "recipes"}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in FOLDERS.items():
        found = [folder] + [f"{folder}.{sub}" for sub in find_packages(where=folder)]
        for dotted in found:
            packages.append(name + dotted[len(folder):])
        package_dir[name] = folder
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
