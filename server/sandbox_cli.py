"""`viva sandbox build-base` and `viva sandbox reap`: the offline base image, and containers a crash left behind."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.settings import Settings

# The Docker SDK loads inside the commands that talk to Docker; every other command builds this parser.


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("sandbox", help="sandbox images and housekeeping")
    sub = parser.add_subparsers(dest="sandbox_command", required=True)
    build = sub.add_parser("build-base", help="build the offline base image (debootstrap + docker import)")
    build.add_argument("--if-missing", action="store_true", help="do nothing when the image exists")
    build.set_defaults(handler=_build_base)
    sub.add_parser("reap", help="remove sandbox containers whose process is gone").set_defaults(handler=_reap)


def _build_base(args: argparse.Namespace, settings: Settings) -> int:
    import docker.errors  # noqa: PLC0415 - see the note at the top

    from sandboxes.docker_backend import docker_client  # noqa: PLC0415 - as above
    from sandboxes.images import build_offline_base  # noqa: PLC0415 - as above

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
    from sandboxes.docker_backend import docker_client, reap  # noqa: PLC0415 - see the note at the top

    removed = reap(docker_client())
    print(f"removed {len(removed)} container(s)" + (": " + ", ".join(removed) if removed else ""))
    return 0
