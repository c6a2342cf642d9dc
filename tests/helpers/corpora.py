"""Corpora the recipes were not tuned on, made from what every Python installation ships.

`docstring_passages` writes technical English, one passage per line (no blank lines): the
docstrings of the standard library's modules, classes and functions, each paragraph flattened
to a line. Deterministic for a given Python version; no network.
"""

import importlib
import inspect
import re
from pathlib import Path

MODULES = [
    "argparse", "asyncio", "collections", "concurrent.futures", "configparser", "contextlib",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "email", "enum", "fractions",
    "functools", "gettext", "gzip", "heapq", "http.client", "http.server", "imaplib",
    "importlib", "inspect", "ipaddress", "itertools", "json", "logging", "mailbox",
    "multiprocessing", "optparse", "os", "pathlib", "pickle", "pydoc", "queue", "random", "re",
    "shutil", "smtplib", "socket", "sqlite3", "statistics", "string", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "tkinter", "typing", "unittest", "urllib.request",
    "uuid", "xml.dom.minidom", "zipfile",
]  # fmt: skip


def _docstrings(module_name: str):
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return
    yield inspect.getdoc(module)
    for _, obj in sorted(vars(module).items()):
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        yield inspect.getdoc(obj)
        if inspect.isclass(obj):
            for _, member in sorted(vars(obj).items()):
                yield inspect.getdoc(member) if callable(member) else None


def _passages():
    for name in MODULES:
        for doc in _docstrings(name):
            for para in re.split(r"\n\s*\n", doc or ""):
                line = " ".join(para.split())
                if len(line.split()) >= 8:  # not headings or signatures
                    yield line


def docstring_passages(path: Path, max_bytes: int = 400_000) -> Path:
    """Write up to `max_bytes` of docstring paragraphs, one per line, to `path`."""
    lines = list(dict.fromkeys(_passages()))  # first occurrence of each, in order
    size = 0
    for n, line in enumerate(lines):
        size += len(line.encode()) + 1
        if size >= max_bytes:
            lines = lines[: n + 1]
            break
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
