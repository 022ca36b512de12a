"""A service in the sandbox, reached from the host through the app tunnel: under concurrency beyond the idle pool,
across restarts, and with the shared socket directory out of the sandbox's reach."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from grader.dynamic import DynamicOptions, run_dynamic
from grader.profile import build_profile
from rubrics.catalogue import ProviderFaultsParams, ServiceStartsParams
from sandboxes.docker_backend import DockerSandbox
from sandboxes.errors import SandboxError
from sandboxes.gateway.app import GatewayConfig
from sandboxes.gateway.serve import UNIX_PATH_MAX, check_socket_path, serve_gateway
from sandboxes.service import IDLE_TUNNELS, AppTunnel, SandboxedService, StartFailure, app_tunnel, gateway_env
from sandboxes.settings import SandboxSettings
from tests.fixtures.repos import make_app_repo

pytestmark = pytest.mark.docker

APP = """
import json, os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.05)
        body = json.dumps({"path": self.path, "pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        print("served", self.path, flush=True)
ThreadingHTTPServer(("127.0.0.1", 8000), Handler).serve_forever()
"""


def test_requests_beyond_the_idle_pool_restarts_and_a_sealed_socket_directory(tmp_path: Path) -> None:
    async def scenario() -> None:
        with (
            serve_gateway(tmp_path / "sock", GatewayConfig(time_scale=0)),
            app_tunnel(tmp_path / "sock", tmp_path / "private") as tunnel,
        ):
            async with DockerSandbox(
                SandboxSettings().offline_image, socket_dir=tmp_path / "sock", env=gateway_env()
            ) as sandbox:
                await sandbox.exec(["mkdir", "-p", "/work/app"])
                await sandbox.write_file("/work/app/app.py", APP.encode())
                service = SandboxedService(sandbox, tunnel, 8000)
                await service.start("python3 app.py", {})
                await service.wait_ready("/health", 10)
                async with service.client() as client:
                    replies = await asyncio.gather(*(client.get(f"/n/{n}") for n in range(IDLE_TUNNELS * 3)))
                assert [reply.status_code for reply in replies] == [200] * (IDLE_TUNNELS * 3)
                first_pid = replies[0].json()["pid"]
                assert "served /n/0" in await service.tail()

                await service.stop()
                assert not await service.alive()
                await service.start("python3 app.py", {})
                await service.wait_ready("/health", 10)
                async with service.client() as client:
                    assert (await client.get("/again")).json()["pid"] != first_pid

                # The shared directory is read-only inside: nothing to plant for the host to follow or fill.
                for command in (["touch", "/sock/x"], ["ln", "-s", "/var/run/docker.sock", "/sock/app.sock"]):
                    assert (await sandbox.exec(command)).returncode != 0
                assert sorted(path.name for path in (tmp_path / "sock").iterdir()) == [
                    "app-tunnel.sock",
                    "gateway.sock",
                ]

                await service.stop()
                await service.start("python3 -c 'import sys; print(\"no database\"); sys.exit(3)'", {})
                with pytest.raises(StartFailure) as failure:
                    await service.wait_ready("/health", 10)
                assert failure.value.reason == "the process exited before it answered"
                assert "no database" in failure.value.log_tail

    asyncio.run(scenario())


def test_a_socket_path_too_long_for_the_kernel_is_refused_at_once_with_the_reason(tmp_path: Path) -> None:
    """sun_path holds 107 bytes: past that the bind fails inside a server thread, which used to surface only as
    "the app tunnel did not start" ten seconds later."""
    deep = tmp_path / ("d" * (UNIX_PATH_MAX - len(str(tmp_path))))
    with pytest.raises(SandboxError, match=r"socket path too long for a Unix socket \(\d+ > 107 bytes\)"):
        AppTunnel(deep / "sock", tmp_path / "private")
    with pytest.raises(SandboxError, match="socket path too long"), serve_gateway(deep / "sock"):
        pass
    check_socket_path(tmp_path / "sock" / "gateway.sock")  # a short one passes


def test_a_dynamic_run_from_a_deep_scratch_directory_keeps_its_sockets_short(tmp_path: Path) -> None:
    """A server's job directory can be deep (data dir / jobs / id / dynamic): the instances' sockets then go to a
    short temporary directory, removed afterwards, and the run proceeds (here: an app that never starts)."""
    repo = make_app_repo("never_starts", tmp_path / "repo")
    deep = tmp_path / ("job-" + "d" * 60) / "dynamic"
    leaves = [
        ("engineering.starts", "service_starts", ServiceStartsParams()),
        ("engineering.faults", "provider_faults", ProviderFaultsParams()),
    ]
    options = DynamicOptions(sandbox=SandboxSettings(image_source="offline"), cache_dir=tmp_path / "cache")
    before = set(Path(tempfile.gettempdir()).glob("viva-*"))
    scores, run = run_dynamic(repo, build_profile(repo), leaves, deep, options)
    assert run is not None and run.service is not None and not run.service.started
    assert scores["engineering.starts"].value == 0 and "exited" in run.service.reason
    assert [line.split(":")[0] for line in run.instances] == ["main", "faults"]
    assert set(Path(tempfile.gettempdir()).glob("viva-*")) <= before  # the short directory is gone
    assert not (deep / "sockets").exists()
