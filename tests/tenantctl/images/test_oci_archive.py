"""Images written without a container engine (tenantctl/images/oci_archive.py): a valid OCI image layout."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from tenantctl.images.oci_archive import ImageFile, ImageSpec, write_image


def read_archive(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isfile()}


def test_the_archive_is_an_oci_layout_naming_the_image(tmp_path):
    spec = ImageSpec(
        "llm-tenants.local/tool:1.0",
        [ImageFile("/bin/tool", b"#!/bin/sh\n", 0o755), ImageFile("/bin/alias", symlink_to="tool")],
        entrypoint=["/bin/tool"],
    )
    digest = write_image(spec, tmp_path / "tool.tar")
    files = read_archive(tmp_path / "tool.tar")
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (descriptor,) = json.loads(files["index.json"])["manifests"]
    assert descriptor["digest"] == digest
    assert descriptor["annotations"]["io.containerd.image.name"] == "llm-tenants.local/tool:1.0"
    for name, blob in files.items():  # every blob is stored under its own digest
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(blob).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(files["blobs/sha256/" + digest.split(":")[1]])
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    assert config["config"]["Entrypoint"] == ["/bin/tool"]
    layer = files["blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]]
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]  # uncompressed: diff id = digest
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/tool"].mode == 0o755 and members["bin/alias"].linkname == "tool"
    assert members["bin"].isdir()


def test_the_same_inputs_give_the_same_image(tmp_path):
    spec = ImageSpec("llm-tenants.local/same:1", [ImageFile("/a", b"a")])
    assert write_image(spec, tmp_path / "one.tar") == write_image(spec, tmp_path / "two.tar")
