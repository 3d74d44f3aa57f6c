"""A dropped file: where it is (a Cloud Storage object or a local file), what it is (size, checksum) and its bytes
from any offset, streamed.

Cloud Storage objects are read over the JSON API's media download with a Range header (google-auth's session;
STORAGE_API_ENDPOINT points it at a loopback server in tests), pinned to the generation that was dropped, so a
file replaced while it loads is never read half old, half new. The checksum is the MD5 of the content, as
Cloud Storage reports it (`md5Hash`); a local file's is computed the same way, so the same content is one file
whichever way it came.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable
from urllib.parse import quote

GOOGLE_STORAGE = "https://storage.googleapis.com"
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"


@dataclass(frozen=True)
class DroppedFile:
    """One dropped file's lineage and a way to read it from a byte offset."""

    bucket: str
    name: str
    generation: str
    size: int
    checksum: str
    dropped_at: datetime
    opener: Callable[[int], BinaryIO]

    @property
    def drop_id(self) -> str:
        return f"{self.bucket}/{self.name}#{self.generation}"

    def open(self, offset: int = 0) -> BinaryIO:
        return self.opener(offset)

    def head(self, size: int) -> bytes:
        with self.open(0) as stream:
            return stream.read(size)

    def lineage(self) -> dict[str, Any]:
        """The columns every row loaded from it carries."""
        return {"drop_bucket": self.bucket, "drop_name": self.name, "drop_generation": self.generation,
                "file_checksum": self.checksum}


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # Cloud Storage's checksum, for identity, not security
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "md5:" + digest.hexdigest()


def local_file(path: Path) -> DroppedFile:
    """A file on this machine as a drop: bucket `local`, its absolute path, its modification time as generation."""
    path = path.resolve()
    stat = path.stat()

    def opener(offset: int) -> BinaryIO:
        handle = path.open("rb")
        handle.seek(offset)
        return handle

    return DroppedFile(bucket="local", name=str(path), generation=str(stat.st_mtime_ns), size=stat.st_size,
                       checksum=file_md5(path), dropped_at=datetime.fromtimestamp(stat.st_mtime, timezone.utc),
                       opener=opener)


@functools.lru_cache(maxsize=None)
def _session(endpoint: str) -> Any:
    """One session per endpoint for the process (Google's: its credentials and token kept across drops)."""
    import requests

    if endpoint != GOOGLE_STORAGE:  # a loopback stand-in takes no credentials
        return requests.Session()
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _project = google.auth.default(scopes=[READ_ONLY_SCOPE])
    return AuthorizedSession(credentials)


def storage_object(event: dict[str, Any], endpoint: str = GOOGLE_STORAGE) -> DroppedFile:
    """The object a Cloud Storage `object.v1.finalized` event's data names, read at its generation."""
    bucket, name, generation = event["bucket"], event["name"], str(event["generation"])
    if event.get("md5Hash"):
        checksum = "md5:" + base64.b64decode(event["md5Hash"]).hex()
    else:  # composite uploads have no MD5; CRC32C and size still name the content
        checksum = f"crc32c:{event.get('crc32c')}:{event.get('size')}"
    url = f"{endpoint}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
    session = _session(endpoint)

    def opener(offset: int) -> BinaryIO:
        response = session.get(url, params={"alt": "media", "generation": generation}, stream=True,
                               headers={"Range": f"bytes={offset}-", "Accept-Encoding": "identity"}, timeout=60)
        if response.status_code == 416:  # at or past the end: nothing left to read
            return io.BytesIO(b"")
        response.raise_for_status()
        response.raw.auto_close = False  # read to its end, it answers b"" instead of closing under the buffer
        return io.BufferedReader(response.raw, buffer_size=1 << 20)

    created = event.get("timeCreated") or datetime.now(timezone.utc).isoformat()
    return DroppedFile(bucket=bucket, name=name, generation=generation, size=int(event.get("size") or 0),
                       checksum=checksum, dropped_at=datetime.fromisoformat(created.replace("Z", "+00:00")),
                       opener=opener)
