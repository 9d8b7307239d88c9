"""The console's files on disk: templates, static files, and third-party browser libraries.

Templates and static files live in the repository's top-level `templates/` and `static/`;
the wheel carries them inside the package as `console/templates` and `console/static`
(see pyproject.toml), so an installed eventscope finds them next to this module.

The browser libraries (htmx, its SSE extension, uPlot) are never committed
and never built into the wheel: the first start of the console, or `eventscope assets
fetch`, downloads each package's tarball from the npm registry once, checks it against the
integrity written below (npm's `sha512-…`, as in a package-lock), and keeps only the files
the pages load. In a checkout they go to `static/vendor/` (git-ignored); an installed
eventscope keeps them in the user's cache folder. Pages work without them: no live
updates or charts. (The topology and lineage graphs are SVG drawn by the console's own
static/js/graph.js.)
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from collectors.cache import cache_dir

PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped_or_checkout(name: str) -> Path:
    shipped = PACKAGE_DIR / name
    return shipped if shipped.is_dir() else PACKAGE_DIR.parent / name


TEMPLATES_DIR = _shipped_or_checkout("templates")
STATIC_DIR = _shipped_or_checkout("static")
IN_CHECKOUT = STATIC_DIR.parent != PACKAGE_DIR

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
MAX_FILE_BYTES = 8 << 20  # the largest file kept (htmx is ~50 KiB)
MAX_TARBALL_BYTES = 32 << 20


class VendorError(RuntimeError):
    """The browser libraries could not be fetched; the message says why and from where."""


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # "sha512-<base64 digest of the tarball>"
    files: tuple[tuple[str, str], ...]  # (path inside the tarball, file name in vendor/)


PACKAGES: tuple[NpmPackage, ...] = (
    NpmPackage(
        "htmx.org", "2.0.11",
        "sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==",
        (("package/dist/htmx.min.js", "htmx.min.js"),),
    ),
    NpmPackage(
        "htmx-ext-sse", "2.2.4",
        "sha512-LJmxVhykyflBWgh5PvbRidcyuqMHlgfajmmzumvKctv9puvsufeH6OaejSMZTNTnEI8O2wXXn4ZZtBdpEMqmEQ==",
        (("package/dist/sse.min.js", "htmx-sse.min.js"),),
    ),
    NpmPackage(
        "uplot", "1.6.32",
        "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        (("package/dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
         ("package/dist/uPlot.min.css", "uPlot.min.css")),
    ),
)  # fmt: skip


def vendor_dir() -> Path:
    """static/vendor/ in a checkout; a folder per set of versions in the cache otherwise."""
    if IN_CHECKOUT:
        return STATIC_DIR / "vendor"
    versions = ",".join(f"{p.name}@{p.version}" for p in PACKAGES)
    return cache_dir() / "vendor" / hashlib.sha256(versions.encode()).hexdigest()[:12]


def registry_url() -> str:
    """The npm registry: EVENTSCOPE_NPM_REGISTRY, else npm's own variable, else the public one."""
    for name in ("EVENTSCOPE_NPM_REGISTRY", "npm_config_registry", "NPM_CONFIG_REGISTRY"):
        if os.environ.get(name):
            return os.environ[name]
    return DEFAULT_REGISTRY


def tarball_url(package: NpmPackage, registry: str) -> str:
    """The registry's tarball address (`<registry>/<name>/-/<bare name>-<version>.tgz`)."""
    bare = package.name.rpartition("/")[2]
    return f"{registry.rstrip('/')}/{package.name}/-/{bare}-{package.version}.tgz"


def missing(directory: Path, packages: tuple[NpmPackage, ...] = PACKAGES) -> list[NpmPackage]:
    return [p for p in packages if not all((directory / name).is_file() for _, name in p.files)]


def ready(directory: Path | None = None) -> bool:
    return not missing(directory or vendor_dir())


def fetch(
    directory: Path,
    packages: tuple[NpmPackage, ...] = PACKAGES,
    *,
    registry: str | None = None,
    timeout_s: float = 30.0,
) -> list[NpmPackage]:
    """Download the packages that are missing from `directory`; return those fetched.

    A tarball whose digest does not match its integrity is refused and nothing of it is
    written; files are written whole (a temporary name, then renamed) so that a page never
    loads half a library.
    """
    wanted = missing(directory, packages)
    registry = registry or registry_url()
    with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
        for package in wanted:
            files = _files_of(package, _download(client, package, registry))
            directory.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                _write_whole(directory / name, content)
    return wanted


def _download(client: httpx.Client, package: NpmPackage, registry: str) -> bytes:
    url = tarball_url(package, registry)
    label = f"{package.name} {package.version}"
    try:
        with client.stream("GET", url) as answer:
            if answer.status_code != 200:
                status = answer.status_code
                raise VendorError(f"{label}: the registry answered HTTP {status} ({url})")
            body = bytearray()
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > MAX_TARBALL_BYTES:
                    raise VendorError(f"{label}: the tarball is larger than expected ({url})")
    except httpx.HTTPError as exc:
        raise VendorError(f"{label}: cannot reach {url} ({type(exc).__name__}: {exc})") from exc
    algorithm, _, expected = package.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, bytes(body)).digest()).decode()
    if actual != expected:
        raise VendorError(f"{label}: the tarball from {url} does not match its integrity; refused")
    return bytes(body)


def _files_of(package: NpmPackage, tarball: bytes) -> dict[str, bytes]:
    """Only the listed regular files, size-capped; never extracts a path from the archive."""
    found: dict[str, bytes] = {}
    wanted = dict(package.files)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive:
            name = wanted.get(member.name)
            if name is None or not member.isfile() or member.size > MAX_FILE_BYTES:
                continue
            extracted = archive.extractfile(member)
            if extracted is not None:
                found[name] = extracted.read()
    absent = sorted(set(wanted.values()) - set(found))
    if absent:
        raise VendorError(f"{package.name} {package.version}: the tarball lacks {absent}")
    return found


def _write_whole(path: Path, content: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def ensure() -> str | None:
    """Fetch what is missing; None when the libraries are there, else why they are not."""
    directory = vendor_dir()
    if ready(directory):
        return None
    try:
        fetch(directory)
    except (VendorError, OSError) as exc:
        return (
            f"the browser libraries are missing and could not be fetched: {exc}. Pages work "
            "without live updates, charts and graphs; `eventscope assets fetch` tries again."
        )
    return None
