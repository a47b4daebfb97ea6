"""Finding the source items of a run: folders, list files, WebDataset tars, COCO annotation files.

Listing happens on the driver and yields small `SourceRef` dicts (a URI, a licence, optional COCO
annotations); the bytes are read by the workers. Every location goes through fsspec, so local paths,
s3:// and gs:// (with the s3/gcs extras) behave alike. A source that cannot be listed at all is a
`SourceError` raised before any work starts; a tar that cannot be read becomes a reject row.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
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


def _list_tar(url: str, licence: str, listing: Listing) -> None:
    try:
        with fsspec.open(url, "rb") as handle, tarfile.open(fileobj=handle, mode="r|*") as archive:
            members = [m.name for m in archive if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES)]
    except (OSError, tarfile.TarError, EOFError) as error:
        listing.rejects.append(
            {"source_uri": url, "reason": "unreadable_tar", "detail": f"{type(error).__name__}: {error}"}
        )
        return
    listing.refs.extend(_ref(f"tar://{name}::{url}", licence) for name in members)


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
