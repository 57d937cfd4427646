#!/usr/bin/env python3
"""Assembles an OCI image archive from files, without a container engine or registry.

The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) in one tar, as
`ctr images import` and `docker load` take it. One uncompressed layer holds the given files (and,
with --with-libs, the shared libraries their ELF binaries load, found with ldd), owned by root,
with fixed modes and times, so the same inputs give the same digest.

    assemble.py --name localhost/fgm-pause:test --out pause.tar \
        --file /tmp/pause:/pause --entrypoint /pause --user 65535:65535

Stdlib only: it runs on a fresh machine before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import struct
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


class AssembleError(Exception):
    """A bad argument or an input file that cannot be used; the message names it."""


@dataclass
class Entry:
    """One path in the layer: a regular file (source set), a directory or a symlink."""

    dest: str
    source: Path | None = None
    mode: int = 0o755
    link: str | None = None
    data: bytes | None = None
    # File capabilities (bit numbers, permitted only), as security.capability.
    caps: list[int] = field(default_factory=list)


@dataclass
class ImageSpec:
    name: str
    entries: list[Entry] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exposed: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    workdir: str = "/"


def parse_file_arg(arg: str) -> Entry:
    """SRC:DEST[:MODE] (octal mode, default 0755 for executables, else 0644)."""
    parts = arg.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
        raise AssembleError(f"--file {arg!r}: expected SRC:/ABSOLUTE/DEST[:MODE]")
    source = Path(parts[0])
    if not source.is_file():
        raise AssembleError(f"--file {arg!r}: {source} is not a file")
    if len(parts) == 3:
        try:
            mode = int(parts[2], 8)
        except ValueError as e:
            raise AssembleError(f"--file {arg!r}: mode {parts[2]!r} is not octal") from e
    else:
        mode = 0o755 if os.access(source, os.X_OK) else 0o644
    return Entry(dest=parts[1], source=source, mode=mode)


CAPABILITIES = {"sys_ptrace": 19}


def vfs_cap_data(bits: list[int]) -> str:
    """security.capability, revision 2, permitted only (no effective bit: a process
    raises what it needs itself, and an exec where the bounding set lacks one still
    succeeds). Little-endian u32s: magic_etc, then (permitted, inheritable) x 2."""
    low = sum(1 << b for b in bits if b < 32)
    high = sum(1 << (b - 32) for b in bits if b >= 32)
    raw = struct.pack("<5I", 0x02000000, low, 0, high, 0)
    # Every byte is below 0x80 for the capabilities we name: valid UTF-8 in a PAX record.
    return raw.decode("latin-1")


def parse_cap_arg(arg: str) -> tuple[str, list[int]]:
    """/DEST=CAP[,CAP] (e.g. /usr/local/bin/fine-grained-monitor=sys_ptrace)."""
    dest, sep, names = arg.partition("=")
    if not sep or not dest.startswith("/"):
        raise AssembleError(f"--file-cap {arg!r}: expected /DEST=CAP[,CAP]")
    bits = []
    for name in names.split(","):
        if name not in CAPABILITIES:
            raise AssembleError(f"--file-cap {arg!r}: unknown capability {name!r} (known: {', '.join(CAPABILITIES)})")
        bits.append(CAPABILITIES[name])
    return dest, bits


LDD_LINE = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")


def shared_libraries(binary: Path) -> list[Path]:
    """Absolute paths of the libraries `binary` loads (the dynamic loader included); [] if static."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    text = out.stdout + out.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if out.returncode != 0:
        raise AssembleError(f"ldd {binary}: {text.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        if "not found" in line:
            raise AssembleError(f"ldd {binary}: a library is missing: {line.strip()}")
        m = LDD_LINE.match(line)
        if m:
            libs.append(Path(m.group(1)))
    return libs


def is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def with_libraries(entries: list[Entry]) -> list[Entry]:
    """Adds the libraries of every ELF file, each at its own path and at the path it resolves to
    (a symlink, as the loader looks it up by the first)."""
    have = {e.dest for e in entries}
    extra: list[Entry] = []
    for entry in entries:
        if entry.source is None or not is_elf(entry.source):
            continue
        for lib in shared_libraries(entry.source):
            real = lib.resolve()
            for dest, link in ((str(real), None), (str(lib), str(real))):
                if dest in have:
                    continue
                have.add(dest)
                if link is not None and dest != link:
                    extra.append(Entry(dest=dest, link=link))
                elif link is None:
                    extra.append(Entry(dest=dest, source=real, mode=0o755))
    return entries + extra


def parents(dest: str) -> list[str]:
    parts = dest.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def layer_tar(entries: list[Entry]) -> bytes:
    """The layer: directories first, then every entry, sorted; root-owned, mtime 0."""
    dirs: set[str] = set()
    for e in entries:
        dirs.update(parents(e.dest))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = kind, mode, 0
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            return ti

        for d in sorted(dirs):
            tar.addfile(info(d + "/", tarfile.DIRTYPE, 0o755))
        for e in sorted(entries, key=lambda e: e.dest):
            name = e.dest.lstrip("/")
            if e.link is not None:
                ti = info(name, tarfile.SYMTYPE, 0o777)
                ti.linkname = e.link
                tar.addfile(ti)
            elif e.source is None and e.data is None:
                tar.addfile(info(name + "/", tarfile.DIRTYPE, e.mode))
            else:
                data = e.data if e.data is not None else e.source.read_bytes()
                ti = info(name, tarfile.REGTYPE, e.mode)
                ti.size = len(data)
                if e.caps:
                    # containerd (and Docker) apply SCHILY.xattr records when unpacking.
                    ti.pax_headers = {"SCHILY.xattr.security.capability": vfs_cap_data(e.caps)}
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_archive(spec: ImageSpec) -> tuple[bytes, str]:
    """The OCI layout tar and the manifest digest."""
    layer = layer_tar(spec.entries)
    layer_digest = digest(layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            k: v
            for k, v in {
                "User": spec.user,
                "Entrypoint": spec.entrypoint,
                "Cmd": spec.cmd,
                "Env": spec.env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "WorkingDir": spec.workdir,
                "Labels": spec.labels,
                "ExposedPorts": {p: {} for p in spec.exposed},
            }.items()
            if v
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "tools/image/assemble.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": len(layer)}],
        "annotations": {"org.opencontainers.image.ref.name": spec.name},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = digest(manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                # containerd's import names the image after this annotation.
                "annotations": {
                    "io.containerd.image.name": spec.name,
                    "org.opencontainers.image.ref.name": spec.name.rsplit(":", 1)[-1],
                },
            }
        ],
    }
    blobs = [(layer_digest, layer), (digest(config_bytes), config_bytes), (manifest_digest, manifest_bytes)]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            tar.addfile(ti, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index, sort_keys=True).encode())
        for d, data in blobs:
            add("blobs/sha256/" + d.split(":", 1)[1], data)
    return out.getvalue(), manifest_digest


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="full image reference, e.g. localhost/fgm-pause:test")
    p.add_argument("--out", required=True, type=Path, help="archive to write (OCI layout tar)")
    p.add_argument("--file", action="append", default=[], help="SRC:/DEST[:MODE], repeatable")
    p.add_argument("--dir", action="append", default=[], help="an empty directory /DEST[:MODE]")
    p.add_argument("--text", action="append", default=[], help="/DEST=CONTENT, a small text file (mode 0644)")
    p.add_argument("--file-cap", action="append", default=[], help="/DEST=CAP[,CAP]: file capabilities (permitted) of a --file")
    p.add_argument("--with-libs", action="store_true", help="add the shared libraries of ELF files")
    p.add_argument("--entrypoint", default="", help="JSON list or one path")
    p.add_argument("--cmd", default="", help="JSON list or one word")
    p.add_argument("--user", default="")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE, repeatable")
    p.add_argument("--expose", action="append", default=[], help="PORT/PROTO, repeatable")
    args = p.parse_args(argv)

    def words(v: str) -> list[str]:
        if not v:
            return []
        if v.startswith("["):
            return json.loads(v)
        return [v]

    try:
        entries = [parse_file_arg(f) for f in args.file]
        for d in args.dir:
            dest, _, mode = d.partition(":")
            entries.append(Entry(dest=dest, mode=int(mode or "755", 8)))
        for t in args.text:
            dest, sep, content = t.partition("=")
            if not sep or not dest.startswith("/"):
                raise AssembleError(f"--text {t!r}: expected /DEST=CONTENT")
            entries.append(Entry(dest=dest, data=content.encode().decode("unicode_escape").encode(), mode=0o644))
        for c in args.file_cap:
            dest, bits = parse_cap_arg(c)
            matching = [e for e in entries if e.dest == dest and (e.source is not None or e.data is not None)]
            if not matching:
                raise AssembleError(f"--file-cap {c!r}: no --file with destination {dest}")
            matching[0].caps = bits
        if args.with_libs:
            entries = with_libraries(entries)
        labels = {}
        for kv in args.label:
            k, sep, v = kv.partition("=")
            if not sep:
                raise AssembleError(f"--label {kv!r}: expected KEY=VALUE")
            labels[k] = v
        spec = ImageSpec(
            name=args.name,
            entries=entries,
            entrypoint=words(args.entrypoint),
            cmd=words(args.cmd),
            user=args.user,
            labels=labels,
            exposed=args.expose,
        )
        archive, manifest_digest = image_archive(spec)
    except AssembleError as e:
        print(f"assemble.py: {e}", file=sys.stderr)
        return 2
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_bytes(archive)
    tmp.replace(args.out)
    print(f"{args.name} {manifest_digest} {len(archive)} bytes -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
