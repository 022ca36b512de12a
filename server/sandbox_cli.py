"""`viva sandbox build-base` and `viva sandbox reap`: the offline base image, and containers a crash left behind."""

from __future__ import annotations

import argparse

import docker.errors

from sandboxes.docker_backend import docker_client, reap
from sandboxes.images import build_offline_base
from server.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("sandbox", help="sandbox images and housekeeping")
    sub = parser.add_subparsers(dest="sandbox_command", required=True)
    build = sub.add_parser("build-base", help="build the offline base image (debootstrap + docker import)")
    build.add_argument("--if-missing", action="store_true", help="do nothing when the image exists")
    build.set_defaults(handler=_build_base)
    sub.add_parser("reap", help="remove sandbox containers whose process is gone").set_defaults(handler=_reap)


def _build_base(args: argparse.Namespace, settings: Settings) -> int:
    client = docker_client()
    name = settings.sandbox.offline_image
    if args.if_missing:
        try:
            client.images.get(name)
            print(f"{name} is already built")
            return 0
        except docker.errors.ImageNotFound:
            pass
    print(f"building {name} with debootstrap (about a minute)…", flush=True)
    image_id = build_offline_base(client, name)
    print(f"built {name} ({image_id[:19]})")
    return 0


def _reap(args: argparse.Namespace, settings: Settings) -> int:
    removed = reap(docker_client())
    print(f"removed {len(removed)} container(s)" + (": " + ", ".join(removed) if removed else ""))
    return 0
