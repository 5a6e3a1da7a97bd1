"""Which folders install as which packages (everything else is in pyproject.toml).

`stream/`, `detectors/` and `connectors/` stay top-level folders, but they install under the
``crisiswatch`` namespace (``crisiswatch.stream``, ``crisiswatch.detectors``, ``crisiswatch.connectors``),
so that nothing with a generic name lands in site-packages.
"""

from setuptools import find_namespace_packages, setup

FOLDERS = {
    "crisiswatch": "crisiswatch",
    "crisiswatch.stream": "stream",
    "crisiswatch.detectors": "detectors",
    "crisiswatch.connectors": "connectors",
}


def packages() -> list[str]:
    """Every package (and data folder) under each folder, named in the ``crisiswatch`` namespace."""
    found = []
    for name, folder in FOLDERS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_namespace_packages(where=folder, exclude=["*__pycache__*"])]
    return sorted(set(found))


setup(packages=packages(), package_dir=FOLDERS)
