"""`viva sandbox build-base`, `build-service` and `reap`: the offline base image, offline images for companion
services (an air-gapped deployment's `postgres:16`, `redis:7`, `chromadb/chroma`), and containers a crash left
behind."""

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
    service = sub.add_parser(
        "build-service",
        help="build an offline image for a companion service (postgres, redis from Debian; chroma from PyPI)",
        description="Builds the image and prints the VIVA_SANDBOX_SERVICE_IMAGES entry that serves it.",
    )
    service.add_argument("kind", choices=["postgres", "redis", "chroma"])
    service.add_argument("--image", help="the local image's name (default viva-svc-KIND:offline)")
    service.add_argument("--chroma-version", help="the chromadb release to serve (a client speaks only to its own)")
    service.add_argument("--if-current", action="store_true", help="do nothing when it is built by this recipe")
    service.set_defaults(handler=_build_service)
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


def _build_service(args: argparse.Namespace, settings: Settings) -> int:
    from sandboxes.docker_backend import docker_client  # noqa: PLC0415 - see the note at the top
    from sandboxes.service_images import (  # noqa: PLC0415 - as above
        CHROMA_VERSION,
        OFFLINE_IMAGES,
        build_service_image,
        service_image_current,
    )

    client = docker_client()
    version = args.chroma_version or CHROMA_VERSION
    default = OFFLINE_IMAGES[args.kind] if version == CHROMA_VERSION else f"viva-svc-chroma:{version}"
    name = args.image or default
    served = {"postgres": "postgres", "redis": "redis", "chroma": "chromadb/chroma"}[args.kind]
    if args.kind == "chroma" and args.chroma_version:
        served += f":{version}"
    if args.if_current and service_image_current(client, args.kind, name, chroma_version=version):
        print(f"{name} is already built by this recipe")
    else:
        print(f"building {name}…", flush=True)
        built = build_service_image(
            client,
            args.kind,
            image=name,
            base_image=settings.sandbox.offline_image,
            index_url=settings.sandbox.index_url,
            chroma_version=version,
        )
        print(f"built {built.image} ({built.size_mb} MB in {built.seconds:g} s)")
    print(f"serve it with: VIVA_SANDBOX_SERVICE_IMAGES={served}={name}")
    return 0


def _reap(args: argparse.Namespace, settings: Settings) -> int:
    from sandboxes.docker_backend import docker_client, reap  # noqa: PLC0415 - see the note at the top

    removed = reap(docker_client())
    print(f"removed {len(removed)} container(s)" + (": " + ", ".join(removed) if removed else ""))
    return 0
