"""`hotjar-user-lookup` run as a user runs it, against the simulator over HTTP.

Each test starts the installed command in a subprocess with no terminal (a new
session, stdin from /dev/null; or a pseudo-terminal for the deletion prompt) and
checks what the simulator received. Only the test of exhausted retries runs
in-process, to shorten the backoff.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import pty
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from hotjar_simulator import HotjarSimulator
from tap_hotjar.http import policy
from tap_hotjar.user_lookup import cli as user_lookup

_SCRIPT = Path(sys.executable).with_name("hotjar-user-lookup")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tap_hotjar.user_lookup"]
ORG = 424242


@pytest.fixture
def sim():
    with HotjarSimulator(seed=0, sites=1, surveys_per_site=1, responses_per_survey=1, organization_id=ORG) as simulator:
        yield simulator


@pytest.fixture
def config(sim, tmp_path):
    # The tap's own config: keys the command does not use (site_ids, ...) are ignored.
    path = tmp_path / "config.json"
    path.write_text(json.dumps(sim.config(organization_id=sim.organization_id, start_date="2024-01-01T00:00:00Z")))
    return path


def run(*args, env=None, stdin=subprocess.DEVNULL, timeout=60):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TAP_HOTJAR_")}
    clean.update(env or {})
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        capture_output=True,
        text=True,
        env=clean,
        stdin=stdin,
        timeout=timeout,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
        check=False,
    )


def settled(sim):
    """sim.counts() once every answered request is counted.

    The simulator counts a request just after answering it, so counts read the
    moment the command exits can lag behind by one.
    """
    previous = sim.counts()
    while True:
        time.sleep(0.03)
        current = sim.counts()
        if current["total"] == previous["total"]:
            return current
        previous = current


def bodies(sim):
    return [entry["body"] for entry in sim.user_lookups]


def assert_no_secret(sim, *texts):
    tokens = list(getattr(sim, "_tokens", {}))
    for text in texts:
        assert sim.client_secret not in text
        for token in tokens:
            assert token not in text


def assert_one_error_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hotjar-user-lookup: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def read_log(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


# -------------------------------------------------------------- single subject


def test_email_only_sends_the_exact_body_and_says_hotjar_will_email_the_report(sim, config):
    result = run("--config", config, "--email", "jane@example.com")

    assert result.returncode == 0, result.stderr
    assert bodies(sim) == [{"data_subject_email": "jane@example.com", "delete_all_hits": False}]
    assert sim.user_lookups[0]["organization_id"] == ORG
    assert "emails each report to the data subject's email address" in result.stdout
    assert "default recipient" in result.stdout
    assert "accepted" in result.stdout
    assert "Summary: 1 accepted, 0 refused, 0 skipped." in result.stdout
    assert result.stderr == ""
    assert_no_secret(sim, result.stdout, result.stderr)


def test_site_user_pairs_only_send_the_map_with_string_keys(sim, config):
    result = run("--config", config, "--site-user", "42=unique_id_42", "--site-user", "043=u 43")

    assert result.returncode == 0, result.stderr
    assert bodies(sim) == [
        {
            "data_subject_site_id_to_user_id_map": {"42": "unique_id_42", "43": "u 43"},
            "delete_all_hits": False,
        }
    ]


def test_email_and_site_users_together_make_one_request(sim, config):
    result = run("--config", config, "--email", " jane@example.com ", "--site-user", "42=u42")

    assert result.returncode == 0, result.stderr
    assert bodies(sim) == [
        {
            "data_subject_email": "jane@example.com",
            "data_subject_site_id_to_user_id_map": {"42": "u42"},
            "delete_all_hits": False,
        }
    ]
    assert settled(sim)["user_lookup"] == 1
    assert settled(sim)["token"] == 1


# ---------------------------------------------------------------------- batches


def test_csv_batch_sends_one_request_per_row_and_logs_each_result(sim, config, tmp_path):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(
        "email,site_users,site_id,user_id,reference\n"
        "a@example.com,,,,DSR-1\n"
        ',"42=u42;43=u43",,,DSR-2\n'
        "\n"
        "c@example.org,,44,u44,DSR-3\n"
    )
    log = tmp_path / "results.jsonl"

    result = run("--config", config, "--file", subjects, "--log", log)

    assert result.returncode == 0, result.stderr
    assert bodies(sim) == [
        {"data_subject_email": "a@example.com", "delete_all_hits": False},
        {
            "data_subject_site_id_to_user_id_map": {"42": "u42", "43": "u43"},
            "delete_all_hits": False,
        },
        {
            "data_subject_email": "c@example.org",
            "data_subject_site_id_to_user_id_map": {"44": "u44"},
            "delete_all_hits": False,
        },
    ]
    entries = read_log(log)
    assert [e["status"] for e in entries] == ["accepted"] * 3
    assert [e["http_status"] for e in entries] == [202] * 3
    assert [e["reference"] for e in entries] == ["DSR-1", "DSR-2", "DSR-3"]
    assert [e["source"] for e in entries] == [f"{subjects} line {n}" for n in (2, 3, 5)]
    assert all(e["organization_id"] == ORG and e["delete"] is False and e["time"] for e in entries)
    assert len({e["key"] for e in entries}) == 3
    # The log is a record to keep: no personal data, no secret.
    text = log.read_text()
    assert log.stat().st_mode & 0o077 == 0  # readable by its owner only
    assert "example.com" not in text and "u42" not in text
    assert_no_secret(sim, text, result.stdout, result.stderr)
    assert "Summary: 3 accepted, 0 refused, 0 skipped." in result.stdout


def test_json_lines_batch(sim, config, tmp_path):
    subjects = tmp_path / "subjects.jsonl"
    subjects.write_text(
        '{"email": "a@example.com"}\n'
        "\n"
        '{"site_users": {"42": "u42", "7": 1234}, "reference": "T-9"}\n'
        '{"email": "b@example.com", "site_users": {"42": "u-b"}}\n'
    )

    result = run("--config", config, "--file", subjects)

    assert result.returncode == 0, result.stderr
    assert bodies(sim) == [
        {"data_subject_email": "a@example.com", "delete_all_hits": False},
        {
            "data_subject_site_id_to_user_id_map": {"42": "u42", "7": "1234"},
            "delete_all_hits": False,
        },
        {
            "data_subject_email": "b@example.com",
            "data_subject_site_id_to_user_id_map": {"42": "u-b"},
            "delete_all_hits": False,
        },
    ]


def test_rerun_with_the_same_log_sends_nothing_already_accepted(sim, config, tmp_path):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email\na@example.com\nb@example.com\n")
    log = tmp_path / "results.jsonl"
    assert run("--config", config, "--file", subjects, "--log", log).returncode == 0
    assert settled(sim)["user_lookup"] == 2
    sim.reset_counts()

    again = run("--config", config, "--file", subjects, "--log", log)

    assert again.returncode == 0, again.stderr
    assert settled(sim)["total"] == 0  # not even a token request
    assert "Skipping 2 subjects already accepted" in again.stdout
    assert "Summary: 0 accepted, 0 refused, 2 skipped." in again.stdout

    # The queue grows: only the new row is sent.
    subjects.write_text("email\na@example.com\nb@example.com\nc@example.com\n")
    grown = run("--config", config, "--file", subjects, "--log", log)
    assert grown.returncode == 0, grown.stderr
    assert bodies(sim)[2:] == [{"data_subject_email": "c@example.com", "delete_all_hits": False}]
    assert "Summary: 1 accepted, 0 refused, 2 skipped." in grown.stdout
    assert len(read_log(log)) == 3

    # A deletion is another request: an accepted lookup does not skip it.
    deleted = run("--config", config, "--file", subjects, "--log", log, "--delete", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert [b["delete_all_hits"] for b in bodies(sim)[3:]] == [True, True, True]


def test_duplicate_subjects_in_a_file_are_sent_once(sim, config, tmp_path):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email\na@example.com\nA@Example.com\n")

    result = run("--config", config, "--file", subjects)

    assert result.returncode == 0, result.stderr
    assert len(bodies(sim)) == 1
    assert "same subject as" in result.stdout
    assert "Summary: 1 accepted, 0 refused, 1 skipped." in result.stdout


def test_refused_subjects_are_logged_with_the_api_error_and_the_batch_goes_on(sim, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sim.config(organization_id=999)))  # unknown organization: 404
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email\na@example.com\nb@example.com\n")
    log = tmp_path / "results.jsonl"

    result = run("--config", config, "--file", subjects, "--log", log)

    assert result.returncode == 1
    assert settled(sim)["user_lookup"] == 2  # the second subject was still tried
    entries = read_log(log)
    assert [e["status"] for e in entries] == ["refused", "refused"]
    assert [e["http_status"] for e in entries] == [404, 404]
    assert "not_found" in entries[0]["reason"] and "organization 999" in entries[0]["reason"]
    assert "Summary: 0 accepted, 2 refused, 0 skipped." in result.stdout
    assert "refused 2 of 2" in assert_one_error_line(result)

    # Refused subjects are not skipped on a rerun.
    run("--config", config, "--file", subjects, "--log", log)
    assert settled(sim)["user_lookup"] == 4


# --------------------------------------------------------------------- deletion


def test_deletion_without_confirmation_and_without_a_terminal_sends_nothing(sim, config):
    result = run("--config", config, "--email", "jane@example.com", "--delete")

    assert result.returncode == 2
    assert "--yes" in assert_one_error_line(result)
    assert settled(sim)["total"] == 0
    assert bodies(sim) == []


def test_deletion_with_yes_sends_delete_all_hits_true_and_says_no_email(sim, config):
    result = run(
        "--config",
        config,
        "--email",
        "jane@example.com",
        "--site-user",
        "42=u42",
        "--delete",
        "--yes",
    )

    assert result.returncode == 0, result.stderr
    assert bodies(sim) == [
        {
            "data_subject_email": "jane@example.com",
            "data_subject_site_id_to_user_id_map": {"42": "u42"},
            "delete_all_hits": True,
        }
    ]
    assert "no email" in result.stdout and "cannot be undone" in result.stdout


def _make_controlling_terminal():
    # Runs in the child, after setsid(): its stdin (the pty) becomes its /dev/tty.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _run_on_terminal(args, answer, *, controlling):
    """Run with stdin on a pseudo-terminal, `answer` typed ahead; returns (result, screen).

    With `controlling`, the pty is the process's /dev/tty (a terminal session, or
    `meltano invoke` in one); without, only its stdin is a terminal.
    """
    master, slave = pty.openpty()
    screen = bytearray()

    def read_screen():
        # Read while the process runs: a hung-up terminal discards unread output.
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=read_screen, daemon=True)
    try:
        os.write(master, answer.encode() + b"\n")
        reader.start()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TAP_HOTJAR_")}
        result = subprocess.run(
            [*COMMAND, *map(str, args)],
            capture_output=True,
            text=True,
            env=clean,
            stdin=slave,
            timeout=60,
            start_new_session=True,
            preexec_fn=_make_controlling_terminal if controlling else None,
            check=False,
        )
    finally:
        os.close(slave)
        time.sleep(0.05)
        os.close(master)
        reader.join(timeout=2)
    return result, screen.decode(errors="replace")


@pytest.mark.parametrize("controlling", [True, False], ids=["dev-tty", "stdin-tty"])
@pytest.mark.parametrize("answer", ["delete", "1"])
def test_deletion_confirmed_on_the_terminal_is_sent(sim, config, answer, controlling):
    args = ["--config", config, "--email", "jane@example.com", "--delete"]
    result, screen = _run_on_terminal(args, answer, controlling=controlling)

    assert result.returncode == 0, result.stderr
    prompt, elsewhere = (screen, result.stderr) if controlling else (result.stderr, screen)
    assert "cannot be undone" not in elsewhere
    assert "jane@example.com" in prompt and "cannot be undone" in prompt
    assert "Type 'delete'" in prompt
    assert bodies(sim) == [{"data_subject_email": "jane@example.com", "delete_all_hits": True}]


@pytest.mark.parametrize("controlling", [True, False], ids=["dev-tty", "stdin-tty"])
def test_deletion_not_confirmed_on_the_terminal_sends_nothing(sim, config, controlling):
    args = ["--config", config, "--email", "jane@example.com", "--delete"]
    result, _ = _run_on_terminal(args, "yes", controlling=controlling)

    assert result.returncode == 2
    assert "not confirmed" in result.stderr.strip().splitlines()[-1]
    assert settled(sim)["total"] == 0


# ---------------------------------------------------------------------- dry run


def test_dry_run_prints_the_requests_masks_secrets_and_sends_nothing(sim, config, tmp_path):
    log = tmp_path / "results.jsonl"
    result = run(
        "--config",
        config,
        "--email",
        "jane@example.com",
        "--site-user",
        "42=u42",
        "--delete",
        "--dry-run",
        "--log",
        log,
    )

    assert result.returncode == 0, result.stderr
    assert settled(sim)["total"] == 0
    assert not log.exists()
    out = result.stdout
    assert f"POST {sim.url}/v1/organizations/{ORG}/user-lookup" in out
    assert "Content-Type: application/json; charset=utf-8" in out
    assert "Authorization: Bearer ********" in out
    assert "client_secret=********" in out
    body = (
        '{"data_subject_email": "jane@example.com", '
        '"data_subject_site_id_to_user_id_map": {"42": "u42"}, "delete_all_hits": true}'
    )
    assert body in out.splitlines()
    assert_no_secret(sim, result.stdout, result.stderr)


# ------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--email", "jane@example"], "not a valid email address"),
        (["--email", "jane doe@example.com"], "not a valid email address"),
        (["--email", "a@b@example.com"], "not a valid email address"),
        (["--site-user", "0=u0"], "site id '0' is not a positive integer"),
        (["--site-user", "abc=u"], "site id 'abc' is not a positive integer"),
        (["--site-user", "42="], "user id for site 42 is empty"),
        (["--site-user", "42"], "must be SITE_ID=USER_ID"),
        (["--site-user", "42=a", "--site-user", "42=b"], "site 42 is given more than once"),
        (["--email", ""], "--email is empty"),
        (["--email", "jane@example.com", "--yes"], "--yes confirms --delete"),
        ([], "no data subject"),
    ],
)
def test_bad_subject_on_the_command_line_gives_one_line_and_sends_nothing(sim, config, args, expected):
    result = run("--config", config, *args)

    assert result.returncode == 2
    assert expected in assert_one_error_line(result)
    assert settled(sim)["total"] == 0


def test_a_bad_file_row_is_named_by_line_number_and_nothing_is_sent(sim, config, tmp_path):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email,site_users\na@example.com,\nnot-an-email,\nc@example.com,\n")

    result = run("--config", config, "--file", subjects)

    assert result.returncode == 2
    line = assert_one_error_line(result)
    assert f"{subjects} line 3: 'not-an-email' is not a valid email address" in line
    assert "nothing was sent" in line
    assert settled(sim)["total"] == 0


def test_every_bad_row_is_reported_before_anything_is_sent(sim, config, tmp_path):
    subjects = tmp_path / "subjects.jsonl"
    subjects.write_text(
        '{"email": "a@example.com"}\n'
        '{"email": "b@"}\n'
        '{"site_users": {"x": "u"}}\n'
        "{}\n"
        "not json\n"
        '{"emial": "c@example.com"}\n'
    )

    result = run("--config", config, "--file", subjects)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    for number in (2, 3, 4, 5, 6):
        assert any(f"{subjects} line {number}: " in line for line in lines), (number, lines)
    assert "5 invalid rows" in lines[-1] and "nothing was sent" in lines[-1]
    assert settled(sim)["total"] == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("email\n", "holds no subjects"),
        ("e-mail\na@example.com\n", "unknown column(s) 'e-mail'"),
        ("email,site_id\na@example.com,42\n", "site_id and user_id go together"),
        ("email\na@example.com,extra\n", "line 2: 2 fields"),
    ],
)
def test_bad_csv_files(sim, config, tmp_path, content, expected):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(content)

    result = run("--config", config, "--file", subjects)

    assert result.returncode == 2
    assert expected in assert_one_error_line(result)
    assert settled(sim)["total"] == 0


def test_an_unwritable_result_log_stops_the_run_before_anything_is_sent(sim, config, tmp_path):
    log = tmp_path / "missing-folder" / "results.jsonl"

    result = run("--config", config, "--email", "jane@example.com", "--log", log)

    assert result.returncode == 2
    assert "cannot write the result log" in assert_one_error_line(result)
    assert settled(sim)["total"] == 0


def test_file_and_flags_together_are_refused(sim, config, tmp_path):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email\na@example.com\n")

    result = run("--config", config, "--file", subjects, "--email", "b@example.com")

    assert result.returncode == 2
    assert "either --file or --email" in assert_one_error_line(result)
    assert settled(sim)["total"] == 0


def test_missing_organization_id_is_a_config_error(sim, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sim.config()))

    result = run("--config", config, "--email", "jane@example.com")

    assert result.returncode == 2
    line = assert_one_error_line(result)
    assert "invalid config" in line and "organization_id is required" in line
    assert settled(sim)["total"] == 0


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"client_secret": ""}, "client_secret is required"),
        ({"organization_id": "abc"}, "organization_id must be a positive integer"),
        ({"api_url": "ftp://example.com"}, "api_url must be an http(s) URL"),
    ],
)
def test_invalid_config_values(sim, tmp_path, overrides, expected):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sim.config(**{"organization_id": ORG, **overrides})))

    result = run("--config", config, "--email", "jane@example.com")

    assert result.returncode == 2
    assert expected in assert_one_error_line(result)
    assert settled(sim)["total"] == 0


def test_unreadable_config_file(sim, tmp_path):
    result = run("--config", tmp_path / "missing.json", "--email", "jane@example.com")

    assert result.returncode == 2
    assert "cannot read the config file" in assert_one_error_line(result)


def test_wrong_credentials_stop_before_any_lookup(sim, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sim.config(organization_id=ORG, client_secret="wrong-secret-value")))

    result = run("--config", config, "--email", "jane@example.com")

    assert result.returncode == 1
    line = assert_one_error_line(result)
    assert "refused the API credentials" in line
    assert "wrong-secret-value" not in result.stdout + result.stderr
    assert settled(sim)["user_lookup"] == 0
    assert result.stdout == ""


# ------------------------------------------------------------ config from env


def test_config_from_environment_variables_as_meltano_passes_them(sim):
    env = {
        "TAP_HOTJAR_CLIENT_ID": sim.client_id,
        "TAP_HOTJAR_CLIENT_SECRET": sim.client_secret,
        "TAP_HOTJAR_ORGANIZATION_ID": str(ORG),
        "TAP_HOTJAR_API_URL": sim.url,
        "TAP_HOTJAR_SITE_IDS": "[1, 2]",
    }
    result = run("--config", "ENV", "--email", "jane@example.com", env=env)

    assert result.returncode == 0, result.stderr
    assert len(bodies(sim)) == 1


def test_environment_fills_in_keys_missing_from_the_file(sim, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sim.config()))  # no organization_id

    result = run(
        "--config",
        config,
        "--email",
        "jane@example.com",
        env={"TAP_HOTJAR_ORGANIZATION_ID": str(ORG)},
    )

    assert result.returncode == 0, result.stderr
    assert len(bodies(sim)) == 1


# ---------------------------------------------------------------- HTTP faults


def test_429_with_retry_after_is_waited_for_and_retried(sim, config, tmp_path):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email\na@example.com\nb@example.com\n")
    sim.set_faults(error_429_every=2, retry_after=1)

    started = time.monotonic()
    result = run("--config", config, "--file", subjects)
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert [b["data_subject_email"] for b in bodies(sim)] == ["a@example.com", "b@example.com"]
    assert settled(sim)["status"].get("429") == 1
    assert "HTTP 429" in result.stderr and "retrying in 1.0 s" in result.stderr
    assert elapsed >= 1.0


def test_server_errors_are_retried_with_backoff(sim, config, tmp_path):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email\na@example.com\nb@example.com\n")
    sim.set_faults(error_5xx_every=2)  # the second lookup fails once

    result = run("--config", config, "--file", subjects)

    assert result.returncode == 0, result.stderr
    assert len(bodies(sim)) == 2
    assert settled(sim)["status"].get("503") == 1
    assert "HTTP 503 (service_unavailable: injected server error); retrying in 0.5 s" in result.stderr


def test_a_revoked_token_is_replaced_once(sim, config, tmp_path):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email\na@example.com\nb@example.com\n")
    sim.set_faults(latency=0.3)

    def revoke():
        # After the first lookup has been answered, before the second is.
        deadline = time.monotonic() + 10
        while sim.counts()["user_lookup"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        sim.revoke_tokens()

    revoker = threading.Thread(target=revoke)
    revoker.start()
    result = run("--config", config, "--file", subjects)
    revoker.join()

    assert result.returncode == 0, result.stderr
    assert len(bodies(sim)) == 2
    assert settled(sim)["token"] == 2
    assert settled(sim)["status"].get("403") == 1


def test_help_describes_the_command_and_warns_about_deletion():
    result = subprocess.run([*COMMAND, "--help"], capture_output=True, text=True, check=False)

    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert "--delete" in text and "Deletion cannot be undone" in text


def test_retries_are_bounded_and_a_dead_api_stops_the_batch(sim, config, tmp_path, monkeypatch, capsys):
    # In-process, with the backoff shortened: eight attempts would otherwise take 31 s.
    monkeypatch.setattr(policy, "DEFAULT", dataclasses.replace(policy.DEFAULT, backoff_base=0.001))
    for name in list(os.environ):
        if name.startswith("TAP_HOTJAR_"):
            monkeypatch.delenv(name)
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email\na@example.com\nb@example.com\n")
    log = tmp_path / "results.jsonl"
    sim.set_faults(error_5xx_every=1, error_5xx_status=502)

    with pytest.raises(SystemExit) as exit_info:
        user_lookup.main(["--config", str(config), "--file", str(subjects), "--log", str(log)])

    out, err = capsys.readouterr()
    assert exit_info.value.code == 1
    assert settled(sim)["user_lookup"] == policy.DEFAULT.max_tries  # b: never sent
    assert "Summary: 0 accepted, 0 refused, 1 failed, 0 skipped, 1 not sent." in out
    assert f"gave up after {policy.DEFAULT.max_tries} attempts" in err.strip().splitlines()[-1]
    assert [(e["status"], e["http_status"]) for e in read_log(log)] == [("failed", 502)]

    # The API is back: a rerun with the same log sends both (neither was accepted).
    sim.set_faults()
    with pytest.raises(SystemExit) as exit_info:
        user_lookup.main(["--config", str(config), "--file", str(subjects), "--log", str(log)])
    assert exit_info.value.code == 0
    assert [b["data_subject_email"] for b in bodies(sim)] == ["a@example.com", "b@example.com"]


def test_a_persistent_403_refuses_the_subject_once_renewed_and_stops_the_batch(sim, config, tmp_path):
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("email\na@example.com\nb@example.com\n")
    log = tmp_path / "results.jsonl"
    sim.set_mutation(
        target="user_lookup", op="reply", status=403, body='{"code": "forbidden", "msg": "no"}', transient=False
    )

    result = run("--config", config, "--file", subjects, "--log", log)

    assert result.returncode == 1
    assert settled(sim)["token"] == 2  # one new token, then the refusal stands
    assert "refused   lookup" in result.stdout and "even with a new token" in result.stdout
    assert "Summary: 0 accepted, 1 refused, 0 skipped, 1 not sent." in result.stdout
    assert [(e["status"], e["http_status"]) for e in read_log(log)] == [("refused", 403)]
