"""Semantic Versioning 2.0.0 checks for model versions.

Example:
    >>> is_semver("1.2.3-rc.1+build.5"), is_semver("1.2")
    (True, False)
"""

from __future__ import annotations

import re

__all__ = ["SEMVER", "is_semver", "validate_semver"]

#: The official SemVer 2.0.0 regular expression (semver.org), anchored.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def is_semver(version: object) -> bool:
    """True when ``version`` is a string in Semantic Versioning 2.0.0 form (``MAJOR.MINOR.PATCH``).

    Example:
        >>> is_semver("0.1.0"), is_semver("01.0.0"), is_semver("v1.0.0")
        (True, False, False)
    """
    return isinstance(version, str) and SEMVER.match(version) is not None


def validate_semver(version: object) -> str:
    """Return ``version`` unchanged, or raise ``ValueError`` saying why it is not SemVer 2.0.0.

    Example:
        >>> validate_semver("2.0.0")
        '2.0.0'
        >>> try:
        ...     validate_semver("1.0")
        ... except ValueError as err:
        ...     print(err)
        version '1.0' is not Semantic Versioning 2.0.0 (MAJOR.MINOR.PATCH[-pre][+build], e.g. '1.0.0')
    """
    if not is_semver(version):
        raise ValueError(
            f"version {version!r} is not Semantic Versioning 2.0.0 (MAJOR.MINOR.PATCH[-pre][+build], e.g. '1.0.0')"
        )
    assert isinstance(version, str)
    return version
