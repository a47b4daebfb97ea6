"""Finding the source items of a run: folders, list files, WebDataset tars, COCO annotation files.

Listing happens on the driver and yields small `SourceRef` dicts (a URI, a licence, optional COCO
annotations); the bytes are read by the workers. Every location goes through fsspec, so local paths,
s3:// and gs:// (with the s3/gcs extras) behave alike. A source that cannot be listed at all is a
`SourceError` raised before any work starts; a tar that cannot be read becomes a reject row.
"""

from __future__ import annotations

import json
import logging
import posixpath
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
# Files in a source folder that describe the photos rather than being photos.
SIDECAR_SUFFIXES = (".coco.json", ".md", ".license", ".licence")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_LABELS_NAME = "labels.coco.json"


def _is_media(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES + VIDEO_SUFFIXES)


class SourceError(Exception):
    """A source that cannot be used at all (missing, unreadable listing, bad labels file)."""


# The extra that brings each object store's fsspec implementation (pyproject.toml), and how to give it
# credentials.
STORE_EXTRAS = {"s3": ("s3", "s3fs"), "s3a": ("s3", "s3fs"), "gs": ("gcs", "gcsfs"), "gcs": ("gcs", "gcsfs")}
CREDENTIAL_HELP = {
    "s3": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run where an instance role "
    "provides them",
    "gcs": "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run "
    "`gcloud auth application-default login`",
}
# botocore's and google-auth's exceptions for absent or unusable credentials, by name: neither package is a
# dependency of the engine, only of the extras.
CREDENTIAL_ERRORS = {
    "NoCredentialsError",
    "PartialCredentialsError",
    "CredentialRetrievalError",
    "DefaultCredentialsError",
    "RefreshError",
}


def store_problem(url: str, error: BaseException) -> str | None:
    """One line for a storage failure its user can fix (a missing extra, missing or refused credentials);
    None for anything else, which is then not hidden."""
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    extra, package = STORE_EXTRAS.get(protocol, (None, None))
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if isinstance(error, ImportError):
        if extra:
            return f"{url} needs the {extra} extra: pip install 'step1x-data[{extra}]' (it brings {package})"
        return f"{url}: {first_line}"  # fsspec's own message names the package
    status = getattr(error, "code", None)  # gcsfs' HttpError carries the HTTP status
    help_text = CREDENTIAL_HELP.get(extra or "", "check the credentials for this store")
    if type(error).__name__ in CREDENTIAL_ERRORS or status == 401:
        return f"no usable credentials for {url} ({type(error).__name__}: {first_line}): {help_text}"
    if extra and (isinstance(error, PermissionError) or status == 403):  # locally: the usual OSError line
        return f"access to {url} was refused ({first_line}): check what these credentials may read and write"
    return None


# The store clients log each retry and fallback, tracebacks included; a failure reaches the user once, as the
# exception that store_access turns into one line.
STORE_LOGGERS = ("gcsfs", "s3fs", "google.auth")


@contextmanager
def store_access(role: str, url: str) -> Iterator[None]:
    """Turn a storage failure a user can fix into one line naming the option and the URL."""
    loggers = [logging.getLogger(name) for name in STORE_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    except Exception as error:  # noqa: BLE001 - only what store_problem recognises is rewritten
        problem = store_problem(url, error)
        if problem is None:
            raise
        raise SourceError(f"{role}: {problem}") from None
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@dataclass
class Listing:
    refs: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)  # items that failed while listing


def _ref(
    uri: str,
    licence: str,
    annotations: list[dict[str, Any]] | None = None,
    size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    return {"uri": uri, "licence": licence, "annotations": annotations or [], "label_size": size}


def uri_of(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A path as a URI other processes can open: local paths stay plain, remote ones keep their protocol."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def load_coco(url: str) -> tuple[dict[str, dict[str, Any]], str]:
    """COCO instances file -> {file_name: {annotations, licence, size}}, and its folder."""
    try:
        with fsspec.open(url, "rt", encoding="utf-8") as handle:
            coco = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise SourceError(f"cannot read COCO labels {url}: {error}") from None
    if not isinstance(coco, dict) or "images" not in coco or "annotations" not in coco:
        raise SourceError(f"{url} is not a COCO instances file (needs 'images' and 'annotations')")
    categories = {c["id"]: c["name"] for c in coco.get("categories", [])}
    licences = {lic["id"]: lic.get("name", "unknown") for lic in coco.get("licenses", [])}
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        if ann.get("category_id") not in categories:
            raise SourceError(f"{url}: annotation {ann.get('id')} has an unknown category_id")
        by_image.setdefault(ann["image_id"], []).append(
            {
                "category": categories[ann["category_id"]],
                "bbox": ann.get("bbox"),
                "segmentation": ann.get("segmentation"),
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
        )
    images = {}
    for img in coco["images"]:
        images[img["file_name"]] = {
            "annotations": by_image.get(img["id"], []),
            "licence": licences.get(img.get("license"), "unknown"),
            "size": (int(img["width"]), int(img["height"])),
        }
    return images, posixpath.dirname(url)


# Compressed tars by their first bytes (tarfile reads any of them; a member's offset is then one in the
# decompressed stream, and the reader decompresses up to it).
TAR_COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}


def _tar_compression(head: bytes) -> str | None:
    return next((name for magic, name in TAR_COMPRESSIONS.items() if head.startswith(magic)), None)


def _member_problem(member: tarfile.TarInfo, first_offsets: dict[str, int]) -> tuple[str, str] | None:
    """Why an image-named tar member cannot be a source, as (reason, detail); None when it can."""
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        return "link_member", f"a {kind} link to {member.linkname!r}; links in a tar are not followed"
    if not member.isfile():
        return "not_a_file", f"a tar member of type {member.type!r}, not a regular file"
    path = posixpath.normpath(member.name)
    if member.name.startswith("/") or path == ".." or path.startswith("../"):
        return "unsafe_member_name", f"{member.name!r} is absolute or leaves the archive's folder"
    if path in first_offsets:
        first = first_offsets[path]
        return "duplicate_member", f"a member of the same name comes first (at byte {first}); only it is read"
    first_offsets[path] = member.offset_data
    return None


def _list_tar(url: str, licence: str, listing: Listing) -> None:
    """Each image-named member is a source read by its offset, or a reject saying why it cannot be one.
    Only headers are read here; a member's bytes are read (size limit checked first) by the worker."""
    try:
        with fsspec.open(url, "rb") as handle:
            compression = _tar_compression(handle.read(6))
            handle.seek(0)
            with tarfile.open(fileobj=handle, mode="r|*") as archive:
                members = [m for m in archive if not m.isdir() and m.name.lower().endswith(IMAGE_SUFFIXES)]
    except (OSError, tarfile.TarError, EOFError) as error:
        listing.rejects.append(
            {"source_uri": url, "reason": "unreadable_tar", "detail": f"{type(error).__name__}: {error}"}
        )
        return
    first_offsets: dict[str, int] = {}
    for member in members:
        uri = f"tar://{member.name}::{url}"
        problem = _member_problem(member, first_offsets)
        if problem:
            listing.rejects.append({"source_uri": uri, "reason": problem[0], "detail": problem[1]})
            continue
        ref = _ref(uri, licence)
        ref["tar"] = {
            "archive": url,
            "offset": member.offset_data,
            "size": member.size,
            "compression": compression,
        }
        listing.refs.append(ref)


def _video_ref(uri: str, licence: str) -> dict[str, Any]:
    return {"uri": uri, "licence": licence, "kind": "video"}


def _list_frame_folders(fs: fsspec.AbstractFileSystem, root: str, licence: str, listing: Listing) -> None:
    """For frame_pair tasks: every video file is a source, and so is every folder of images (its frames,
    in name order)."""
    frames: dict[str, list[str]] = {}
    for path in sorted(fs.find(root)):
        name = posixpath.basename(path)
        if name.lower().endswith(VIDEO_SUFFIXES):
            listing.refs.append(_video_ref(uri_of(fs, path), licence))
        elif name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("."):
            frames.setdefault(posixpath.dirname(path), []).append(uri_of(fs, path))
    for folder, uris in sorted(frames.items()):
        listing.refs.append({"uri": uri_of(fs, folder), "licence": licence, "kind": "frames", "frames": uris})


def _list_folder(
    fs: fsspec.AbstractFileSystem, root: str, labels: str | None, licence: str, listing: Listing
) -> None:
    # A labels file given on the command line is attached by list_sources for every kind of source;
    # here only the folder's own labels.coco.json, matched on the path relative to the folder.
    own_labels = posixpath.join(root, DEFAULT_LABELS_NAME)
    coco = load_coco(uri_of(fs, own_labels))[0] if labels is None and fs.exists(own_labels) else {}
    for path in sorted(fs.find(root)):
        name = posixpath.basename(path)
        if (
            name.startswith(".")
            or name.lower().endswith(SIDECAR_SUFFIXES)
            # LICENSE.txt, README: but a photo may be named licenseplate.jpg
            or (name.upper().startswith(("LICENSE", "LICENCE", "README")) and not _is_media(name))
        ):
            continue
        relative = posixpath.relpath(path, root)
        entry = coco.get(relative) or coco.get(name)
        if entry:
            listing.refs.append(_ref(uri_of(fs, path), entry["licence"], entry["annotations"], entry["size"]))
        elif name.lower().endswith((".tar", ".tar.gz", ".tgz")):
            _list_tar(uri_of(fs, path), licence, listing)
        else:
            listing.refs.append(_ref(uri_of(fs, path), licence))


def _list_file_of_uris(url: str, licence: str, listing: Listing) -> None:
    base = posixpath.dirname(url)

    def resolve(uri: str) -> str:
        return uri if "://" in uri or uri.startswith("/") else posixpath.join(base, uri)

    if url.endswith(".parquet"):
        with fsspec.open(url, "rb") as handle:
            table = pq.read_table(handle)
        column = "uri" if "uri" in table.column_names else "path" if "path" in table.column_names else None
        if column is None:
            raise SourceError(f"{url}: a parquet list needs a 'uri' or 'path' column")
        licences = table.column("licence").to_pylist() if "licence" in table.column_names else None
        for i, uri in enumerate(table.column(column).to_pylist()):
            listing.refs.append(_ref(resolve(uri), licences[i] if licences else licence))
        return
    with fsspec.open(url, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#"):
                listing.refs.append(_ref(resolve(line), licence))


def list_sources(
    spec: str, labels: str | None = None, licence: str = "unknown", videos: bool = False
) -> Listing:
    """Every source item named by ``spec`` (see the module docstring), in a stable order.

    ``videos``: the run's task takes frame pairs, so its sources are video files and folders of frames.
    """
    listing = Listing()
    with store_access("--source", spec):
        fs, path = fsspec.core.url_to_fs(spec)
        if fsspec.core.has_magic(path):
            matches = sorted(fs.glob(path))
            if not matches:
                raise SourceError(f"source pattern {spec} matches nothing")
        elif fs.exists(path):
            matches = [path]
        else:
            raise SourceError(f"source {spec} does not exist")
        for match in matches:
            if videos:
                _list_one_video(fs, match, licence, listing)
            else:
                _list_one(fs, match, labels, licence, listing)
    if labels:
        with store_access("--labels", labels):
            _attach_by_name(listing, load_coco(labels)[0])
    return listing


def _attach_by_name(listing: Listing, coco: dict[str, dict[str, Any]]) -> None:
    """Labels from a COCO file for the listed items: an image's `file_name` is matched against the end
    of each item's path (`a/b.jpg` matches `.../a/b.jpg`), else against its file name alone."""
    by_name = {posixpath.basename(name): entry for name, entry in coco.items()}
    for ref in listing.refs:
        parts = ref["uri"].split("::")[0].removeprefix("tar://").split("/")
        suffixes = ("/".join(parts[-k:]) for k in range(min(len(parts), 4), 0, -1))
        entry = next((coco[key] for key in suffixes if key in coco), None) or by_name.get(parts[-1])
        if entry and not ref["annotations"]:
            ref.update(annotations=entry["annotations"], licence=entry["licence"], label_size=entry["size"])


def _list_one_video(fs: fsspec.AbstractFileSystem, path: str, licence: str, listing: Listing) -> None:
    if fs.isdir(path):
        _list_frame_folders(fs, path, licence, listing)
    elif path.endswith((".txt", ".lst", ".parquet")):
        before = len(listing.refs)
        _list_file_of_uris(uri_of(fs, path), licence, listing)
        for ref in listing.refs[before:]:
            ref["kind"] = "video"
    else:
        listing.refs.append(_video_ref(uri_of(fs, path), licence))


def _list_one(
    fs: fsspec.AbstractFileSystem, path: str, labels: str | None, licence: str, listing: Listing
) -> None:
    url = uri_of(fs, path)
    if fs.isdir(path):
        _list_folder(fs, path, labels, licence, listing)
    elif path.endswith(".json"):
        images, folder = load_coco(url)
        for file_name, entry in sorted(images.items()):
            listing.refs.append(
                _ref(posixpath.join(folder, file_name), entry["licence"], entry["annotations"], entry["size"])
            )
    elif path.endswith((".txt", ".lst", ".parquet")):
        _list_file_of_uris(url, licence, listing)
    elif path.endswith((".tar", ".tar.gz", ".tgz")):
        _list_tar(url, licence, listing)
    else:
        listing.refs.append(_ref(url, licence))
