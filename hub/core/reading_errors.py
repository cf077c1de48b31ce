"""Why a file could not be read, in Danish: Python words its file and TOML errors in English.

The people who write Beredt's files (the hub's config, an exercise scenario) read the errors, so neither
``No such file or directory`` nor ``Illegal character`` reaches them: ``os_error`` says what went wrong
with the file, ``toml_where`` where the parser stopped.
"""

from __future__ import annotations

import errno
import re

_TOML_AT = re.compile(r"at line (?P<line>\d+), column (?P<column>\d+)")

_OS_ERRORS = {
    errno.ENOENT: "filen findes ikke",
    errno.EACCES: "ingen adgang til filen; ret filens rettigheder",
    errno.EPERM: "ingen adgang til filen; ret filens rettigheder",
    errno.EISDIR: "det er en mappe, ikke en fil",
    errno.ENOTDIR: "en del af stien er ikke en mappe",
    errno.ENAMETOOLONG: "stien er for lang",
    errno.ELOOP: "stien har for mange symbolske links (en løkke?)",
    errno.EIO: "læsefejl på lagermediet",
}


def os_error(exc: OSError) -> str:
    """What went wrong reading a file, in Danish (the system's error code when it is an unusual one)."""
    if exc.errno in _OS_ERRORS:
        return _OS_ERRORS[exc.errno]
    code = errno.errorcode.get(exc.errno, "ukendt") if exc.errno is not None else "ukendt"
    return f"styresystemet afviste at læse filen (fejlkode {code})"


def toml_where(parser: str) -> str:
    """Where the TOML parser stopped, from its English message: " i linje 3, kolonne 7", " ved filens
    slutning", or "" when the message does not say."""
    where = _TOML_AT.search(parser)
    if where:
        return f" i linje {where['line']}, kolonne {where['column']}"
    return " ved filens slutning" if "end of document" in parser else ""
