"""The deployment guide as written, on Debian's packages: the shipped nginx.conf passes
``nginx -t`` and carries wss:// to a server started with the systemd unit's own flags."""

from __future__ import annotations

import asyncio
import configparser
import re
import shlex
import tomllib
import shutil
import ssl
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import websockets

from .support.client import Client, refusal
from .support.net import free_port
from .support.process import REPO, ServeProcess, run_cli
from .support.settings import effective
from .support.tls import self_signed
from .support.tools import require

pytestmark = pytest.mark.slow  # starts nginx and servers as subprocesses

DOCS = REPO / "docs" / "howto"
HOST = "rtc.example.com"  # the guide's name; the test's TLS certificate is made for it


def nginx() -> str:
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    require(path, "needs Debian's nginx: apt-get install nginx")
    assert path is not None
    return path


def site_config(directory: Path, listen_port: int, upstream_port: int) -> str:
    """docs/howto/nginx.conf with only its addresses and certificate paths changed."""
    certificate, key = self_signed(directory, HOST)
    text = (DOCS / "nginx.conf").read_text()
    for shipped, here in (("listen 443 ", f"listen 127.0.0.1:{listen_port} "),
                          (f"/etc/letsencrypt/live/{HOST}/fullchain.pem", str(certificate)),
                          (f"/etc/letsencrypt/live/{HOST}/privkey.pem", str(key)),
                          ("http://127.0.0.1:8080", f"http://127.0.0.1:{upstream_port}")):
        assert shipped in text, shipped
        text = text.replace(shipped, here)
    return text


def main_config(directory: Path, site: Path) -> Path:
    """A minimal nginx.conf around the site, everything in ``directory``."""
    path = directory / "nginx.conf"
    path.write_text(f"""
user root;
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {site};
}}
""")
    return path


def unit_config_file() -> Path:
    """The configuration file the guide's systemd unit runs with, as shipped next to it: the
    unit's ``serve`` has ``--config`` and no other flag."""
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read_string((DOCS / "membrane-rtc.service").read_text())
    words = shlex.split(unit["Service"]["ExecStart"])
    assert words[1:3] == ["serve", "--config"] and len(words) == 4, words
    shipped = DOCS / Path(words[3]).name
    assert shipped.is_file(), shipped
    return shipped


@pytest.fixture
async def behind_nginx(tmp_path: Path) -> AsyncIterator[tuple[int, ssl.SSLContext]]:
    binary = nginx()
    # The unit's file as shipped; flags win over its keys: free ports, and a small share per
    # client, to see each client counted apart behind the proxy.
    server = await ServeProcess.start("--config", str(unit_config_file()), "--port", "0",
                                      "--metrics-port", str(free_port()),
                                      "--max-connections-per-ip", "2")
    upstream = int(server.url.split(":")[2].split("/")[0])
    listen = free_port()
    site = tmp_path / "membrane-rtc.conf"
    site.write_text(site_config(tmp_path, listen, upstream))
    config = main_config(tmp_path, site)
    check = await asyncio.create_subprocess_exec(
        binary, "-t", "-c", str(config), "-p", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await check.communicate()
    assert check.returncode == 0, out.decode()  # nginx -t: the shipped directives are valid
    process = await asyncio.create_subprocess_exec(binary, "-c", str(config), "-p", str(tmp_path))
    context = ssl.create_default_context(cafile=str(tmp_path / "fullchain.pem"))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", listen)
                writer.close()
                break
            except OSError:
                assert loop.time() < deadline, (tmp_path / "error.log").read_text()
                await asyncio.sleep(0.05)
        yield listen, context
    finally:
        process.terminate()
        await process.wait()
        await server.stop()


async def test_wss_through_the_guides_nginx_to_the_guides_server(
        behind_nginx: tuple[int, ssl.SSLContext]) -> None:
    port, context = behind_nginx
    url = f"wss://{HOST}:{port}/webrtc/demo"
    kwargs = {"ssl": context, "host": "127.0.0.1", "port": port}
    page = {"origin": websockets.Origin(f"https://{HOST}")}
    alice = await Client.connect(url, **kwargs, **page)
    bob = await Client.connect(url, **kwargs, **page)
    await alice.recv_event("joined")
    await bob.send("offer", {"sdp": "v=0"}, [alice.peer_id])
    assert (await alice.recv_event("offer"))["from"] == bob.peer_id
    foreign = await refusal(url, **kwargs, origin=websockets.Origin("https://evil.example"))
    assert foreign.response.status_code == 403  # --allowed-origin, through the proxy
    await alice.close()
    await bob.close()


async def test_behind_the_guides_nginx_each_client_address_has_its_own_share(
        behind_nginx: tuple[int, ssl.SSLContext]) -> None:
    """Every client reaches the server from nginx's address; --trusted-proxy makes it count
    each by the address nginx names (clients here come from other loopback addresses), and
    what a client writes in X-Forwarded-For itself changes nothing."""
    port, context = behind_nginx
    url = f"wss://{HOST}:{port}/webrtc/demo"
    page = {"origin": websockets.Origin(f"https://{HOST}")}

    def source(ip: str, forged: str | None = None) -> dict[str, Any]:
        headers = {"X-Forwarded-For": forged} if forged else {}
        return {"ssl": context, "host": "127.0.0.1", "port": port, "local_addr": (ip, 0),
                "additional_headers": headers, "max_queue": None, **page}

    first = [await Client.connect(url, **source("127.0.0.2", forged=f"198.51.100.{n}"))
             for n in range(2)]
    refused = await refusal(url, **source("127.0.0.2", forged="198.51.100.9"))
    assert refused.response.status_code == 429  # its share is 2, whatever it claims
    other = await Client.connect(url, **source("127.0.0.3"))  # another client: its own share
    for client in (*first, other):
        await client.close()


async def test_the_unit_runs_the_shipped_configuration_file_and_nothing_else() -> None:
    """``serve --config FILE`` alone is the guide's production setup: every key of the file
    is in effect, from the file, and the classes it names accept their options."""
    shipped = unit_config_file()
    status, out, err = await run_cli("serve", "--config", str(shipped), "--print-config")
    assert status == 0, err
    settings = effective(out)
    keys = tomllib.loads(shipped.read_text())
    assert keys and all(settings[key][1] == str(shipped) for key in keys), out
    assert settings["room-class"][0] == '"actors.capped:CappedRoom"'
    assert settings["trusted-proxy"][0] == '["127.0.0.1/32"]'
    assert settings["metrics-port"] == ("9100", str(shipped))


async def test_the_kubernetes_snippet_overrides_the_file_from_the_environment() -> None:
    """The guide's container: the same file, and environment variables that win over it
    (every one a setting's)."""
    text = (DOCS / "deploy.md").read_text()
    [snippet] = re.findall(r"```yaml\n(.*?)```", text, re.S)
    args = re.search(r"args: (\[.*\])", snippet)
    assert args is not None
    words = [word.strip(' "') for word in args.group(1).strip("[]").split(",")]
    assert words[:2] == ["serve", "--config"] and len(words) == 3
    env = dict(re.findall(r'\{name: (MEMBRANE_RTC_\w+), value: "([^"]*)"\}', snippet))
    assert {"MEMBRANE_RTC_HOST", "MEMBRANE_RTC_METRICS_HOST"} <= set(env)
    status, out, err = await run_cli("serve", "--config", str(DOCS / Path(words[2]).name),
                                     "--print-config", env=env)
    assert status == 0, err
    assert "not a setting" not in err  # each variable is a setting's
    settings = effective(out)
    assert settings["host"] == ('"0.0.0.0"', "MEMBRANE_RTC_HOST")
    assert settings["metrics-host"] == ('"0.0.0.0"', "MEMBRANE_RTC_METRICS_HOST")
    assert settings["drain-timeout"] == ("20.0", "MEMBRANE_RTC_DRAIN_TIMEOUT")
    assert settings["trusted-proxy"] == ('["10.0.0.0/8"]', "MEMBRANE_RTC_TRUSTED_PROXY")
    assert settings["metrics-port"][0] == "9100"  # the rest: the file's
