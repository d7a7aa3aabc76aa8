"""``wakeword serve`` as users run it: in a subprocess, stopped and reloaded by signals,
queried by ``wakeword status``, with hooks and the event socket; plus install-service."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli_torch_free
from test_cli import assert_one_line_error

WAKEWORD = [sys.executable, "-m", "wakeword"]
TONE = ["--model", "tone", "--no-handoff"]


def serve(tmp_path: Path, *args: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen(
        [*WAKEWORD, "serve", *TONE, "--control", f"unix:{tmp_path}/control.sock", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def status(tmp_path: Path) -> dict:
    proc = subprocess.run(
        [*WAKEWORD, "status", "--control", f"unix:{tmp_path}/control.sock", "--json"], capture_output=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[str, str]:
    """Send ``sig``; wait for the exit (the timeout is a hang guard only); return stdout and stderr.

    The process is waited for before its standard input is closed, so a daemon reading a pipe
    cannot be mistaken for one stopped by the signal when it is only ending at end of input."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    out, err = proc.communicate(timeout=30)
    return out.decode(), err.decode()


def assert_stopped_by(sig: int, err: str) -> None:
    """The daemon shut down because of ``sig``: before its input ended, and its pipeline stopped in time
    (otherwise it logs that and exits 1 without it)."""
    assert f"signal {int(sig)}: shutting down" in err, err
    assert "end of input" not in err and "did not stop" not in err, err


def connect(path: Path) -> socket.socket:
    wait_for(path.exists, what=str(path))
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(path))
    sock.settimeout(20)
    return sock


def test_sigterm_exits_0_promptly_after_events_hooks_and_status(tmp_path, stream_wav):
    argv_file = tmp_path / "hook.json"
    hook = (
        f"{sys.executable} -c 'import json,sys; open(sys.argv[1], \"a\").write(json.dumps(sys.argv[2:]) + chr(10))' "
        f"{argv_file} {{keyword}} {{score}} '$(touch {tmp_path}/pwned)'"
    )
    proc = serve(
        tmp_path,
        "--input",
        stream_wav,
        "--realtime",
        "--json",
        "--events",
        f"unix:{tmp_path}/events.sock",
        "--exec",
        hook,
        "--log-format",
        "json",
    )
    try:
        subscriber = connect(tmp_path / "events.sock").makefile("rb")
        first = json.loads(subscriber.readline())  # marvin at ~1.2 s of the stream, paced in real time
        assert (first["event"], first["keyword"]) == ("detection", "marvin")
        wait_for(argv_file.exists, what="the hook")
        st = status(tmp_path)
    except BaseException:
        proc.kill()
        raise
    out, err = stop(proc)
    assert proc.returncode == 0, err
    assert_stopped_by(signal.SIGTERM, err)  # not by the end of the 12 s stream: it stopped when told to
    assert st["state"] == "listening" and st["detections"] >= 1 and st["blocks"] > 0
    assert st["reconnects"] == 0 and st["overflows"] == 0 and st["dropped_blocks"] == 0
    assert 1.0 < st["audio_s"] < 12 and st["uptime_s"] > 0
    assert st["events"]["subscribers"] == 1 and st["hooks"]["failures"] == 0
    # stdout has the same objects as `run --json`
    assert json.loads(out.splitlines()[0]) == first
    # the hook's argv: one argument per template word, the $(...) text left alone
    calls = [json.loads(line) for line in argv_file.read_text().splitlines()]
    assert calls[0][0] == "marvin" and float(calls[0][1]) == first["score"]
    assert calls[0][2] == f"$(touch {tmp_path}/pwned)"
    assert not (tmp_path / "pwned").exists()
    # structured logs: one JSON object per line; the sockets are gone
    records = [json.loads(line) for line in err.splitlines()]
    assert any(r.get("event", {}).get("keyword") == "marvin" for r in records)
    assert not (tmp_path / "events.sock").exists() and not (tmp_path / "control.sock").exists()


def test_sigint_stops_a_daemon_waiting_on_raw_stdin(tmp_path):
    proc = serve(tmp_path, "--input", "-", stdin=subprocess.PIPE)
    try:
        proc.stdin.write(b"\0\0" * 16000)  # 1 s of silence, then the writer goes quiet (but stays open)
        proc.stdin.flush()
        wait_for(lambda: (tmp_path / "control.sock").exists() and status(tmp_path)["blocks"] > 0, what="audio")
    except BaseException:
        proc.kill()
        raise
    _, err = stop(proc, signal.SIGINT)  # stdin stays open until the daemon has exited
    assert proc.returncode == 0, err
    assert_stopped_by(signal.SIGINT, err)  # the blocked read was interrupted; no end of input was needed


def test_sighup_reloads_the_config_and_keeps_the_old_one_when_it_is_bad(tmp_path, stream_wav):
    config = tmp_path / "wakeword.toml"
    before, after = tmp_path / "before.txt", tmp_path / "after.txt"

    def write_config(target: Path) -> None:
        config.write_text(
            f'[hooks.marvin]\nexec = [["{sys.executable}", "-c", '
            f"\"open('{target}', 'a').write('{{time_s}}\\\\n')\"]]\n"
        )

    write_config(before)
    proc = serve(tmp_path, "--input", stream_wav, "--realtime", "--json", "--config", str(config))
    try:
        wait_for(before.exists, what="the first hook")  # marvin at ~1.2 s
        config.write_text("threshold = 'high'\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(tmp_path)["reload_failures"] == 1, what="the failed reload")
        write_config(after)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(tmp_path)["reloads"] == 1, what="the reload")
        wait_for(after.exists, what="the reloaded hook")  # marvin at ~5.6 s
    except BaseException:
        proc.kill()
        raise
    out, err = stop(proc)
    assert proc.returncode == 0, err
    assert "reload failed, keeping the running configuration" in err and "threshold" in err
    times = [float(t) for t in before.read_text().split()]
    assert len(times) == 1 and 1.0 < times[0] < 1.5
    # the clock runs on across the engine swap: the second marvin is at ~5.6 s of the stream
    [t_after] = [float(t) for t in after.read_text().split()]
    assert 5.5 < t_after < 6.0
    assert [e["time_s"] for e in map(json.loads, out.splitlines()) if e["keyword"] == "marvin"][:2] == [
        times[0],
        t_after,
    ]


@pytest.mark.parametrize("option", ["--events", "--wyoming", "--control"])
def test_a_non_loopback_address_is_refused_unless_allowed(tmp_path, stream_wav, option):
    proc = subprocess.run(
        [*WAKEWORD, "serve", *TONE, "--input", stream_wav, option, "tcp://0.0.0.0:10400"],
        capture_output=True,
        timeout=60,
    )
    assert_one_line_error(proc, option, "--allow-remote")
    assert proc.returncode == 2


def test_serve_refuses_to_replace_a_file_and_status_without_a_daemon_is_one_line(tmp_path, stream_wav):
    keep = tmp_path / "events.sock"
    keep.write_text("not a socket")
    proc = subprocess.run(
        [*WAKEWORD, "serve", *TONE, "--input", stream_wav, "--control", "none", "--events", str(keep)],
        capture_output=True,
        timeout=60,
    )
    assert_one_line_error(proc, "not a socket")
    assert keep.read_text() == "not a socket"
    proc = subprocess.run(
        [*WAKEWORD, "status", "--control", f"unix:{tmp_path}/none.sock"], capture_output=True, timeout=60
    )
    assert_one_line_error(proc, "no `wakeword serve` is running")


def test_serve_of_a_file_ends_with_the_file(tmp_path, stream_wav):
    proc = subprocess.run(
        [*WAKEWORD, "serve", *TONE, "--input", stream_wav, "--json", "--control", "none"],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    reference = subprocess.run(
        [*WAKEWORD, "run", *TONE, "--input", stream_wav, "--json"], capture_output=True, timeout=60
    )
    assert proc.stdout == reference.stdout and proc.stdout.count(b"\n") == 5


def test_serving_imports_neither_torch_nor_transformers(tmp_path, stream_wav):
    out = run_cli_torch_free(
        "serve",
        *TONE,
        "--input",
        stream_wav,
        "--json",
        "--control",
        f"unix:{tmp_path}/c.sock",
        "--events",
        f"unix:{tmp_path}/e.sock",
        "--exec",
        "true",
    )
    assert out.count('"detection"') == 5


def test_install_service_writes_a_user_unit_once(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    cmd = [
        *WAKEWORD,
        "install-service",
        "--user",
        "--",
        "--config",
        "/home/pi/my wakeword.toml",
        "--exec",
        "notify-send {keyword} 100%",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    unit = (tmp_path / "systemd" / "user" / "wakeword.service").read_text()
    [exec_start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_start == (
        f'ExecStart={sys.executable} -m wakeword serve --config "/home/pi/my wakeword.toml" '
        '--exec "notify-send {keyword} 100%%"'
    )
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit and "WantedBy=default.target" in unit
    again = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
    assert_one_line_error(again, "already exists", "--force")
    assert subprocess.run([*cmd[:5], "--force"], env=env, capture_output=True, timeout=60).returncode == 0
    assert_one_line_error(subprocess.run([*WAKEWORD, "install-service"], capture_output=True, timeout=60), "--user")
