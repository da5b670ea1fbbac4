"""The embedded default broker: a private Mosquitto in ``.onemap/mqtt/``, run like the local
PostGIS cluster (:mod:`onemap.cluster`).

``up`` writes its configuration the first time (listening on 127.0.0.1 only, no anonymous
clients, persistence on), picks a free port (kept in ``.onemap/mqtt/port``), and starts it
(as an unprivileged user when we are root). The one account's password is generated once and
kept in ``ONEMAP_HOME/mqttpass`` (mode 0600, outside the folder handed to the server user);
the broker holds only its hash. Every step is safe to repeat.

``ONEMAP_MQTT_URL`` (``mqtt://user:password@host:port``) names an existing broker instead.

Mosquitto keeps its queue in memory and writes it to ``data/`` when it stops and every
``AUTOSAVE_SECONDS``: a stop (``down``, SIGTERM) keeps every queued message; a crash of the
broker itself may lose what arrived since the last save.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from onemap.cluster import free_port, port_is_free
from onemap.errors import OnemapError
from onemap.settings import Settings

AUTOSAVE_SECONDS = 2
# A client away (a listener restarting) finds this many messages kept for it, per client.
QUEUED_MESSAGES = 1_000_000

CONFIG = """\
# written by onemap: a private broker for one machine
per_listener_settings false
listener {port} 127.0.0.1
allow_anonymous false
password_file {root}/passwd
persistence true
persistence_location {root}/data/
autosave_interval {autosave}
pid_file {root}/mosquitto.pid
log_dest file {root}/mosquitto.log
log_type error
log_type warning
log_type notice
connection_messages true
max_queued_messages {queued}
max_inflight_messages 0
"""


class BrokerError(OnemapError):
    """The MQTT broker cannot be started, stopped or reached."""


@dataclass(frozen=True)
class Broker:
    """Where a client connects, and as whom."""

    host: str
    port: int
    username: str | None
    password: str | None

    def url(self, hide_password: bool = True) -> str:
        """``mqtt://user:***@host:port`` (the password shown only when asked)."""
        secret = "***" if hide_password else (self.password or "")
        who = f"{self.username}:{secret}@" if self.username else ""
        return f"mqtt://{who}{self.host}:{self.port}"

    def reachable(self, timeout: float = 1.0) -> bool:
        """True when something accepts connections at host:port."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return True
        except OSError:
            return False


def new_client(address: Broker, client_id: str = "", manual_ack: bool = False) -> paho.Client:
    """A paho client (MQTT 5, callback API 2) signing in to ``address``; it reconnects by
    itself after a lost connection, waiting 1 s at first and at most 5 s."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5, manual_ack=manual_ack)
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    return client


def session_properties(expiry_seconds: int = 0xFFFFFFFF, receive_maximum: int | None = None
                       ) -> Properties:
    """CONNECT properties of a persistent session: the broker keeps the session (its
    subscriptions and the QoS 1 messages not yet acknowledged) ``expiry_seconds`` after the
    client goes (the default: for ever), and sends at most ``receive_maximum`` messages the
    client has not acknowledged yet."""
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry_seconds
    if receive_maximum:
        properties.ReceiveMaximum = receive_maximum
    return properties


def parse_url(url: str) -> Broker:
    """``mqtt://user:password@host:port`` → :class:`Broker` (port 1883 when not given)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise BrokerError(f"ONEMAP_MQTT_URL must look like mqtt://user:password@host:port, "
                          f"not {url!r}")
    return Broker(parts.hostname, parts.port or 1883,
                  unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password else None)


@dataclass(frozen=True)
class BrokerStatus:
    """What ``onemap mqtt status`` reports."""

    configured: bool
    running: bool
    port: int | None
    pid: int | None
    root: Path


def broker(settings: Settings, start: bool = True) -> Broker:
    """The broker to use: ``ONEMAP_MQTT_URL`` when set, else the local one (started when
    ``start`` and needed)."""
    if settings.mqtt_url:
        return parse_url(settings.mqtt_url)
    local = LocalBroker(settings)
    if start:
        local.up()
    return local.address()


class LocalBroker:
    """A Mosquitto living in ``settings.mqtt_dir``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.mqtt_dir
        self.config = self.root / "mosquitto.conf"
        self.port_file = self.root / "port"
        self.pid_file = self.root / "mosquitto.pid"
        self.log_file = self.root / "mosquitto.log"
        self.credentials = settings.home / "mqttpass"  # user:password, ours alone (0600)

    # -- facts -------------------------------------------------------------------------
    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def running_pid(self) -> int | None:
        """PID of our broker if it is alive, else None."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (FileNotFoundError, PermissionError):
            return None
        return pid if comm.startswith("mosquitto") else None

    def status(self) -> BrokerStatus:
        pid = self.running_pid()
        return BrokerStatus(self.config.exists(), pid is not None, self.port, pid, self.root)

    def address(self) -> Broker:
        if self.port is None or not self.credentials.exists():
            raise BrokerError("the local broker has never been started: run `onemap mqtt up`")
        user, password = self.credentials.read_text().strip().split(":", 1)
        return Broker("127.0.0.1", self.port, user, password)

    # -- life cycle ----------------------------------------------------------------------
    def up(self) -> BrokerStatus:
        """Configure (first time) and start the broker; wait until it takes connections."""
        if self.running_pid() is not None:
            return self.status()
        binary = _binary("mosquitto")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # the server user's alone: its queue and the password hash
        (self.root / "data").mkdir(exist_ok=True)
        self._ensure_credentials()
        port = self._choose_port()
        self.config.write_text(CONFIG.format(port=port, root=self.root,
                                             autosave=AUTOSAVE_SECONDS,
                                             queued=QUEUED_MESSAGES))
        self.pid_file.unlink(missing_ok=True)
        _hand_over(self.root)
        self._run(binary, "-c", self.config, "-d", what="mosquitto")
        self.port_file.write_text(f"{port}\n")
        self._wait_until_listening(port)
        return self.status()

    def down(self, timeout: float = 30.0) -> None:
        """Stop the broker (it saves its queue on the way out); a stopped one stays so."""
        pid = self.running_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.running_pid() == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running_pid() == pid:
            raise BrokerError(f"the broker (pid {pid}) did not stop within {timeout:.0f} s")

    # -- steps ---------------------------------------------------------------------------
    def _ensure_credentials(self) -> None:
        """The account's password, made once (written whole, then linked into place), and
        the broker's hashed copy of it."""
        if not self.credentials.exists():
            self.settings.home.mkdir(parents=True, exist_ok=True)
            draft = self.credentials.with_name(f".mqttpass.{os.getpid()}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, f"{self.settings.mqtt_user}:{secrets.token_urlsafe(24)}\n"
                         .encode())
            finally:
                os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(draft, self.credentials)
            draft.unlink()
        hashed = self.root / "passwd"
        if not hashed.exists() or hashed.stat().st_mtime < self.credentials.stat().st_mtime:
            user, password = self.credentials.read_text().strip().split(":", 1)
            hashed.unlink(missing_ok=True)
            fd = os.open(hashed, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
            self._run(_binary("mosquitto_passwd"), "-b", hashed, user, password,
                      what="mosquitto_passwd", as_server=False)

    def _choose_port(self) -> int:
        previous = self.port
        if previous and port_is_free(previous):
            return previous
        return free_port(self.settings.mqtt_port)

    def _wait_until_listening(self, port: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if Broker("127.0.0.1", port, None, None).reachable(0.2):
                return
            time.sleep(0.05)
        raise BrokerError(f"mosquitto did not listen on 127.0.0.1:{port} within "
                          f"{timeout:.0f} s{self._log_tail()}")

    def _run(self, *cmd, what: str, as_server: bool = True) -> None:
        options = _as_server_user() if as_server else {}
        result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                                **options)
        if result.returncode != 0:
            raise BrokerError(f"{what} failed (exit {result.returncode}): "
                              f"{(result.stderr or result.stdout).strip()}{self._log_tail()}")

    def _log_tail(self) -> str:
        if not self.log_file.exists():
            return ""
        lines = self.log_file.read_text(errors="replace").splitlines()[-5:]
        return f"\nlast lines of {self.log_file}:\n" + "\n".join(lines)


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()),
        None)
    if found is None:
        raise BrokerError(f"{name} was not found. Install it with `sudo apt-get install "
                          "mosquitto` (Debian/Ubuntu) or `conda install -c conda-forge "
                          "mosquitto`, or set ONEMAP_MQTT_URL to a broker")
    return found


def _server_user() -> pwd.struct_passwd | None:
    """The account the broker runs as when we are root: Mosquitto started as root drops to
    its own user after reading the configuration, then cannot write our folder; started as
    that user, it runs as it is."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("ONEMAP_MQTT_OS_USER", "mosquitto")
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise BrokerError(f"running as root, but there is no '{name}' user to run Mosquitto "
                          f"as: create one with `useradd --system {name}` or set "
                          "ONEMAP_MQTT_OS_USER") from exc


def _as_server_user() -> dict:
    user = _server_user()
    if user is None:
        return {}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/", "LANG": "C.UTF-8"}
    return {"user": user.pw_uid, "group": user.pw_gid, "env": env, "cwd": "/"}


def _hand_over(path: Path) -> None:
    """As root, give the folder to the unprivileged server user."""
    user = _server_user()
    if user is None:
        return
    for base, dirs, files in os.walk(path):
        for name in [base, *(os.path.join(base, d) for d in dirs),
                     *(os.path.join(base, f) for f in files)]:
            os.chown(name, user.pw_uid, user.pw_gid)
