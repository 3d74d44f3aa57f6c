"""A loopback Cloud Storage that the file drop's reader runs against unmodified: the JSON API's object
metadata (`GET /storage/v1/b/{bucket}/o/{object}`) and media download (`?alt=media`), pinned to a `generation`
(an older or unknown one is a 404, as Cloud Storage answers), with `Range: bytes=N-` answered 206 and a
Content-Range, and 416 past the end. `put` stores an object as an upload finalizes it and gives the data of the
`google.cloud.storage.object.v1.finalized` CloudEvent that Eventarc delivers for it (bucket, name, generation,
size and metageneration as strings, md5Hash and crc32c base64, timeCreated).

    python -m sandbox.cloud_storage FILE... --bucket drops   (serves the files; prints each event's data)
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import google_crc32c

from sandbox.server import Request, Response, RunningSandbox, SandboxServer, serve_until_interrupted


class StorageState:
    """Objects by (bucket, name): their live generation's bytes and metadata."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def put(self, bucket: str, name: str, data: bytes, content_type: str = "text/csv") -> dict[str, Any]:
        """Stores data as the object's new generation; returns the object resource (the finalize event's data)."""
        with self._lock:
            generation = str(time.time_ns())
            resource = {
                "kind": "storage#object", "bucket": bucket, "name": name, "generation": generation,
                "metageneration": "1", "contentType": content_type, "size": str(len(data)),
                "md5Hash": base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),
                "crc32c": base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode(),
                "timeCreated": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "id": f"{bucket}/{name}/{generation}", "storageClass": "STANDARD"}
            self.objects[(bucket, name)] = (data, resource)
            return dict(resource)


class CloudStorageSandbox(RunningSandbox):
    def __init__(self) -> None:
        self.state = StorageState()
        self.server = SandboxServer("cloud-storage")
        self.server.route("GET", r"/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>.+)", "object")(self._object)

    def _object(self, request: Request) -> Response:
        key = (unquote(request.params["bucket"]), unquote(request.params["name"]))
        found = self.state.objects.get(key)
        generation = request.arg("generation")
        if found is None or (generation is not None and generation != found[1]["generation"]):
            return Response.json({"error": {"code": 404, "message": "No such object: " + "/".join(key)}}, 404)
        data, resource = found
        if request.arg("alt") != "media":
            return Response.json(resource)
        wanted = request.headers.get("Range", "")
        if not wanted.startswith("bytes="):
            return Response(200, data, {"Content-Type": resource["contentType"]})
        start = int(wanted.removeprefix("bytes=").split("-")[0])
        if start >= len(data):
            return Response.json({"error": {"code": 416, "message": "Requested range not satisfiable"}}, 416)
        return Response(206, data[start:], {"Content-Type": resource["contentType"],
                                            "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})

    def client_environment(self) -> dict[str, str]:
        return {"STORAGE_API_ENDPOINT": self.url}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--bucket", default="drops")
    args = parser.parse_args()
    sandbox = CloudStorageSandbox()
    events = [sandbox.state.put(args.bucket, path.name, path.read_bytes()) for path in args.files]
    serve_until_interrupted(sandbox, "STORAGE_API_ENDPOINT={url}",
                            *(json.dumps(event).replace("{", "{{").replace("}", "}}") for event in events))


if __name__ == "__main__":
    main()
