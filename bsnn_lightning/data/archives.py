"""Getting a dataset's archives onto disk: find, download, verify, and extract them safely.

A dataset is a list of :class:`ArchiveSpec` (the archive's original file name, its MD5, where
to get it). :func:`fetch_archives` looks for each archive in the dataset folder under its
original name (or a known alias); a missing one is downloaded when a URL still serves it. A
file that is not the archive -- empty, an HTML page (sign-in, cookie or bot-challenge pages are
what broken download links return), the wrong MD5 -- is never used: the error names the file,
what was expected and what was found, where to get the archive by hand and exactly where to put
it. :func:`extract_archive` unpacks into a temporary folder and renames it into place, refusing
any member whose path would land outside the target folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "ArchiveError",
    "ArchiveSpec",
    "DatasetNotFoundError",
    "UnsafeArchiveError",
    "extract_archive",
    "fetch_archives",
    "file_md5",
]

_MAGIC = {
    ".zip": (b"PK\x03\x04", b"PK\x05\x06"),
    ".tar.gz": (b"\x1f\x8b",),
}
_USER_AGENT = "bsnn-lightning dataset fetcher (python urllib)"
_TIMEOUT_S = 60
_CHUNK = 1 << 20
EXTRACTED_MARKER = ".bsnn-extracted.json"
"""File written inside an extracted folder, last, before it is renamed into place."""


@dataclass(frozen=True)
class ArchiveSpec:
    """One archive of a dataset.

    Attributes:
        filename: the archive's original name; the user may put it in the dataset folder by hand.
        md5: its published MD5 (lowercase hex), or None where none is published.
        page: where a person can get it (the dataset's page).
        url: a direct download link that still works, or None (download by hand only).
        aliases: other names the same archive is known under (e.g. what Tonic saves it as).

    Example:
        >>> spec = ArchiveSpec("recordings.zip", md5=None, page="https://example.org/dataset")
        >>> spec.kind, spec.stem, spec.url
        ('.zip', 'recordings', None)
        >>> ArchiveSpec("recordings.rar", md5=None, page="https://example.org/dataset").kind
        Traceback (most recent call last):
            ...
        ValueError: expected an archive name ending in ('.zip', '.tar.gz'), got 'recordings.rar'
    """

    filename: str
    md5: str | None
    page: str
    url: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def kind(self) -> str:
        for suffix in _MAGIC:
            if self.filename.endswith(suffix):
                return suffix
        raise ValueError(f"expected an archive name ending in {tuple(_MAGIC)}, got {self.filename!r}")

    @property
    def stem(self) -> str:
        return self.filename[: -len(self.kind)]


class DatasetNotFoundError(FileNotFoundError):
    """An archive is not in the dataset folder and could not be downloaded.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> spec = ArchiveSpec("recordings.zip", md5=None, page="https://example.org/dataset")  # no download link
        >>> try:
        ...     fetch_archives("Toy", Path(tmp.name), [spec], download=False, progress=False)
        ... except DatasetNotFoundError as err:  # a FileNotFoundError; the message says where to get it
        ...     for line in str(err).splitlines()[1:3]:
        ...         print(line)
          - recordings.zip: not found (no direct download link exists)
              get it by hand from https://example.org/dataset
        >>> tmp.cleanup()
    """


class ArchiveError(RuntimeError):
    """A file under an archive's name is not that archive (empty, HTML, wrong checksum, unreadable).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> _ = (Path(tmp.name) / "recordings.zip").write_text("<html>Sign in</html>")  # a failed download saved
        >>> spec = ArchiveSpec("recordings.zip", md5=None, page="https://example.org/dataset")
        >>> try:
        ...     fetch_archives("Toy", Path(tmp.name), [spec], download=False, progress=False)
        ... except ArchiveError as err:
        ...     print(str(err).split(": ", 1)[1].split(",")[0])
        it is an HTML page (what a broken download link
        >>> tmp.cleanup()
    """


class UnsafeArchiveError(ArchiveError):
    """An archive member would be written outside the target folder (or is a link or device).

    Example:
        >>> import tempfile, zipfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> archive = Path(tmp.name) / "evil.zip"
        >>> with zipfile.ZipFile(archive, "w") as zf:
        ...     zf.writestr("../escape.txt", "x")
        >>> try:
        ...     extract_archive(archive, Path(tmp.name) / "out", progress=False)
        ... except UnsafeArchiveError as err:  # an ArchiveError; nothing was extracted
        ...     print(str(err).split(" of archive")[0])
        refusing to extract member '../escape.txt'
        >>> sorted(p.name for p in Path(tmp.name).iterdir())
        ['evil.zip']
        >>> tmp.cleanup()
    """


def fetch_archives(
    dataset: str,
    root: Path,
    specs: list[ArchiveSpec],
    *,
    download: bool = True,
    urls: dict[str, str] | None = None,
    checksums: dict[str, str | None] | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Make sure every archive of ``specs`` is in ``root`` and verified; return their paths.

    Args:
        dataset: the dataset's display name, for messages.
        root: the dataset folder; archives live directly in it, under their original names.
        specs: the archives.
        download: try each spec's URL (or ``urls[filename]``) for a missing archive.
        urls: download links replacing the built-in ones, by archive file name (a mirror).
        checksums: expected MD5s replacing the published ones, by archive file name; ``None`` as
            a value skips the check for that archive (a repackaged mirror).
        progress: show a progress bar while downloading and hashing.

    Raises:
        DatasetNotFoundError: some archives are missing and could not be downloaded; the message
            lists, for each, why, where to get it by hand and the exact path to put it at.
        ArchiveError: a file is present under an archive's name but is not the archive.

    Example:
        >>> import tempfile, zipfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> root = Path(tmp.name)
        >>> with zipfile.ZipFile(root / "recordings.zip", "w") as zf:  # the archive, put in root by hand
        ...     zf.writestr("recordings/cat/a.aedat", b"#!AER-DAT2.0\\r\\n")
        >>> md5 = file_md5(root / "recordings.zip")
        >>> spec = ArchiveSpec("recordings.zip", md5=md5, page="https://example.org/dataset")
        >>> fetch_archives("Toy", root, [spec], download=False, progress=False)["recordings.zip"].name
        'recordings.zip'
        >>> wrong = ArchiveSpec("recordings.zip", md5="0" * 32, page="https://example.org/dataset")
        >>> try:
        ...     fetch_archives("Toy", root, [wrong], download=False, progress=False)
        ... except ArchiveError as err:
        ...     print(str(err).splitlines()[0].split("expected ")[1])
        00000000000000000000000000000000 (incomplete download, or another version).
        >>> tmp.cleanup()
    """
    urls = dict(urls or {})
    checksums = dict(checksums or {})
    unknown = (set(urls) | set(checksums)) - {s.filename for s in specs}
    if unknown:
        known = sorted(s.filename for s in specs)
        raise ValueError(f"expected archive names of {dataset} among {known}, got {sorted(unknown)}")
    found: dict[str, Path] = {}
    missing: list[tuple[ArchiveSpec, str]] = []
    for spec in specs:
        md5 = checksums.get(spec.filename, spec.md5)
        url = urls.get(spec.filename, spec.url)
        path = _existing(root, spec)
        if path is None and download and url:
            try:
                path = _download(root, spec, url, md5, progress)
            except (OSError, ArchiveError) as err:
                missing.append((spec, f"download from {url} failed: {_reason(err)}"))
                continue
        if path is None:
            why = "download=False" if (url and not download) else "no direct download link exists"
            missing.append((spec, f"not found ({why})"))
            continue
        _verify(path, spec, md5, progress)
        found[spec.filename] = path
    if missing:
        raise DatasetNotFoundError(_missing_message(dataset, root, missing, checksums))
    return found


def extract_archive(archive: Path, dest: Path, md5: str | None = None, progress: bool = True) -> Path:
    """Extract ``archive`` into the folder ``dest`` (created), atomically and safely.

    Members go to a temporary sibling folder, then a marker file recording the archive is written
    and the folder is renamed to ``dest``; an interrupted extraction leaves only a ``*.tmp-*``
    folder that is never read. If ``dest`` already holds a complete extraction it is kept.

    Raises:
        UnsafeArchiveError: a member with an absolute path, a ``..`` component, a link, or a
            device file; the message names the member and the archive. Nothing is extracted then.
        ArchiveError: the archive cannot be read (corrupt, truncated).

    Example:
        >>> import tempfile, zipfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> archive = Path(tmp.name) / "recordings.zip"
        >>> with zipfile.ZipFile(archive, "w") as zf:
        ...     zf.writestr("recordings/cat/a.aedat", b"#!AER-DAT2.0\\r\\n")
        >>> dest = extract_archive(archive, Path(tmp.name) / "extracted" / "recordings", progress=False)
        >>> sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.*"))  # the member, and the marker written last
        ['.bsnn-extracted.json', 'recordings/cat/a.aedat']
        >>> extract_archive(archive, dest, progress=False) == dest  # complete already: kept as it is
        True
        >>> tmp.cleanup()
    """
    if (dest / EXTRACTED_MARKER).is_file():
        return dest
    if dest.exists():
        raise ArchiveError(
            f"{dest} exists but is not a complete extraction of {archive.name} (no {EXTRACTED_MARKER} in it); "
            "delete that folder and run again"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=dest.name + ".tmp-"))
    try:
        _extract_members(archive, tmp, progress)
        marker = {"archive": archive.name, "size": archive.stat().st_size, "md5": md5}
        (tmp / EXTRACTED_MARKER).write_text(json.dumps(marker))
        try:
            os.replace(tmp, dest)
        except OSError:
            if not (dest / EXTRACTED_MARKER).is_file():  # not another process that got there first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def file_md5(path: Path, progress: bool = False) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "hello.txt"
        >>> _ = path.write_bytes(b"hello")
        >>> file_md5(path)
        '5d41402abc4b2a76b9719d911017c592'
        >>> tmp.cleanup()
    """
    digest = hashlib.md5()
    with open(path, "rb") as f, _bar(progress, path.stat().st_size, f"md5 {path.name}") as bar:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _existing(root: Path, spec: ArchiveSpec) -> Path | None:
    for name in (spec.filename, *spec.aliases):
        path = root / name
        if path.is_file():
            return path
    return None


def _verify(path: Path, spec: ArchiveSpec, md5: str | None, progress: bool) -> None:
    """Raise :class:`ArchiveError` unless ``path`` is plausibly ``spec`` (magic bytes, MD5)."""
    problem = _content_problem(path, spec)
    if problem is None and md5 is not None:
        got = file_md5(path, progress)
        if got != md5.lower():
            problem = f"its MD5 is {got}, expected {md5.lower()} (incomplete download, or another version)"
    if problem is not None:
        raise ArchiveError(
            f"{path} is not the {spec.filename} archive: {problem}.\n"
            f"Delete it, get {spec.filename} by hand from {spec.page}"
            + (f" (direct link: {spec.url})" if spec.url else "")
            + f" and put it at {path.parent / spec.filename}"
        )


def _content_problem(path: Path, spec: ArchiveSpec) -> str | None:
    size = path.stat().st_size
    if size == 0:
        return "it is empty (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(512)
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        return "it is an HTML page (what a broken download link, a sign-in or a bot-challenge page returns), not an archive"
    if not head.startswith(_MAGIC[spec.kind]):
        return f"it does not start like a {spec.kind} file (first bytes {head[:8]!r}, size {size} bytes)"
    return None


def _download(root: Path, spec: ArchiveSpec, url: str, md5: str | None, progress: bool) -> Path:
    """Stream ``url`` to a temporary file in ``root``, check it, then rename it to its name."""
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=root, prefix=spec.filename + ".", suffix=".part")
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with _bar(progress, total, f"download {spec.filename}") as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        _verify(tmp, spec, md5, progress)
        final = root / spec.filename
        os.replace(tmp, final)
        return final
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _reason(err: BaseException) -> str:
    if isinstance(err, ArchiveError):
        return str(err).split(".\n")[0].split(": ", 1)[-1]
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"{err.reason}"
    return f"{type(err).__name__}: {err}"


def _missing_message(dataset: str, root: Path, missing, checksums) -> str:
    lines = [f"{dataset}: {len(missing)} archive(s) missing from {root}:"]
    for spec, why in missing:
        md5 = checksums.get(spec.filename, spec.md5)
        lines.append(f"  - {spec.filename}: {why}")
        lines.append(f"      get it by hand from {spec.page}" + (f" (direct link: {spec.url})" if spec.url else ""))
        lines.append(f"      and put it, under this name, at {root / spec.filename}" + (f" (MD5 {md5})" if md5 else ""))
    lines.append("Then run again; archives already in place are used as they are.")
    return "\n".join(lines)


def _extract_members(archive: Path, dest: Path, progress: bool) -> None:
    kind = ".zip" if archive.name.endswith(".zip") or zipfile.is_zipfile(archive) else ".tar.gz"
    try:
        if kind == ".zip":
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                for info in members:
                    _check_member(archive, info.filename, dest, is_link=_zip_is_link(info))
                with _bar(progress, len(members), f"extract {archive.name}") as bar:
                    for info in members:
                        zf.extract(info, dest)
                        bar.update(1)
        else:
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                for info in members:
                    special = not (info.isfile() or info.isdir())
                    _check_member(archive, info.name, dest, is_link=special)
                with _bar(progress, len(members), f"extract {archive.name}") as bar:
                    for info in members:
                        _tar_extract(tf, info, dest)
                        bar.update(1)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise ArchiveError(f"cannot read archive {archive}: {type(err).__name__}: {err}") from err


def _check_member(archive: Path, name: str, dest: Path, is_link: bool) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    target = (dest / pure).resolve()
    outside = pure.is_absolute() or ".." in pure.parts or not target.is_relative_to(dest.resolve())
    if outside or is_link:
        what = "its path would land outside the target folder" if outside else "it is a link or special file"
        raise UnsafeArchiveError(f"refusing to extract member {name!r} of archive {archive}: {what} {dest}")


def _zip_is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16  # unix mode when the archive was made on unix, else 0
    kind = stat.S_IFMT(mode)  # 0 when no file type was recorded: an ordinary member
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def _tar_extract(tf: tarfile.TarFile, info: tarfile.TarInfo, dest: Path) -> None:
    if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: the stdlib's own safety net too
        tf.extract(info, dest, set_attrs=False, filter="data")
    else:
        tf.extract(info, dest, set_attrs=False)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


def _bar(enabled: bool, total, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B" if desc.startswith(("download", "md5")) else "it", unit_scale=True, leave=False)
