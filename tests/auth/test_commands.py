"""`megacity token|keys|apikey` through their argparse commands."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from megacity.auth.apikeys import ApiKeyVerifier
from megacity.auth.commands import add_commands, parse_ttl
from megacity.auth.keys import KeySet
from megacity.auth.principal import InvalidCredentials, Principal
from megacity.auth.tokens import TokenVerifier
from megacity.db import Database
from tests.db.conftest import _clean_env  # noqa: F401  (fixture: no MEGACITY_* leaks in)


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="megacity")
    add_commands(parser.add_subparsers(metavar="COMMAND"))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def _out(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.parametrize(
    ("text", "seconds"), [("3600", 3600), ("45s", 45), ("30m", 1800), ("1h", 3600), ("7d", 604800)]
)
def test_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


def test_token_issue_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("keys", "generate", "--region", "kr-seoul", "--keys-dir", str(tmp_path)) == 0
    kid = _out(capsys)[0].strip()
    argv = ["token", "issue", "--sub", "learner-1", "--zone", "mpcstudy", "--zone", "my-ktube"]
    argv += ["--scopes", "ai:use,ai:admin", "--ttl", "30m", "--region", "kr-seoul"]
    assert run(*argv, "--keys-dir", str(tmp_path)) == 0
    out, err = _out(capsys)
    assert out.count("\n") == 1 and "learner-1" in err  # only the token on stdout
    principal = TokenVerifier(KeySet(tmp_path)).verify(out.strip())
    assert principal.subject == "learner-1" and principal.region == "kr-seoul"
    assert principal.scopes == {"ai:use", "ai:admin"}
    assert principal.zones == {"mpcstudy", "my-ktube"}
    assert principal.credential_id is not None and principal.credential_id.startswith(kid)
    assert principal.group is None
    assert run(*argv, "--group", "school-7", "--keys-dir", str(tmp_path)) == 0
    out, err = _out(capsys)
    assert "group school-7" in err
    assert TokenVerifier(KeySet(tmp_path)).verify(out.strip()).group == "school-7"


def test_token_issue_for_every_zone_from_the_environment_keys_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEGACITY_AUTH_KEYS_DIR", str(tmp_path / "k"))
    assert run("keys", "generate", "--region", "us-east", "--alg", "RS256") == 0
    assert (tmp_path / "k" / "us-east").is_dir()
    assert run("token", "issue", "--sub", "svc", "--zones", "*", "--region", "us-east") == 0
    token = _out(capsys)[0].splitlines()[-1]
    assert TokenVerifier(KeySet(tmp_path / "k")).verify(token).zones is None


def test_the_keys_dir_defaults_to_data_dir_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEGACITY_DATA_DIR", str(tmp_path / "data"))
    assert run("keys", "generate", "--region", "kr-seoul") == 0
    kid = _out(capsys)[0].strip()
    assert (tmp_path / "data" / "keys" / "kr-seoul" / f"{kid}.pub.pem").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--zone", "mpcstudy", "--ttl", "1w"], "invalid ttl"),
        (["--zone", "mpcstudy", "--ttl", "0"], "ttl"),
        (["--zone", "mpcstudy", "--scopes", "ai:root"], "unknown scope"),
        ([], "--zone or --zones is required"),
        (["--zone", "mpcstudy", "--region", "eu-west"], "no private key"),
        (["--zone", "mpcstudy", "--region", "EU"], "invalid region"),
        (["--zone", "mpcstudy", "--group", "two words"], "group must be"),
    ],
)
def test_token_issue_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    run("keys", "generate", "--region", "kr-seoul", "--keys-dir", str(tmp_path))
    _out(capsys)
    argv = ["token", "issue", "--sub", "u", "--keys-dir", str(tmp_path)]
    if "--region" not in extra:
        argv += ["--region", "kr-seoul"]
    assert run(*argv, *extra) == 2
    out, err = _out(capsys)
    assert out == "" and message in err and err.count("\n") == 1


def test_keys_rotate_list_retire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--keys-dir", str(tmp_path)]
    run("keys", "generate", "--region", "kr-seoul", *where)
    old = _out(capsys)[0].strip()
    issuer = KeySet(tmp_path)
    run("token", "issue", "--sub", "u", "--zone", "z", "--region", "kr-seoul", *where)
    old_token = _out(capsys)[0].strip()
    assert run("keys", "rotate", "--region", "kr-seoul", *where) == 0
    new = _out(capsys)[0].strip()
    assert new != old and issuer.signing_key("kr-seoul")[0] == new
    run("keys", "generate", "--region", "us-east", *where)
    _out(capsys)
    assert run("keys", "list", *where) == 0
    table = _out(capsys)[0].splitlines()
    assert table[0].split() == ["REGION", "KID", "ALG", "CREATED", "SIGNS"]
    rows = {line.split()[1]: line.split() for line in table[1:]}
    assert len(rows) == 3 and rows[new][-1] == "yes" and len(rows[old]) == 4
    run("keys", "list", "--region", "us-east", *where)
    assert len(_out(capsys)[0].splitlines()) == 2
    verifier = TokenVerifier(KeySet(tmp_path))
    assert verifier.verify(old_token).subject == "u"  # the old key still verifies
    assert run("keys", "retire", "--region", "kr-seoul", f"--kid={old}", *where) == 0
    assert not (tmp_path / "kr-seoul" / f"{old}.pub.pem").exists()
    assert run("keys", "retire", "--region", "kr-seoul", f"--kid={old}", *where) == 2
    assert "no key" in _out(capsys)[1]


def test_apikey_create_list_revoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'megacity.db'}"
    db = Database(url)
    db.upgrade()
    monkeypatch.setenv("MEGACITY_DATABASE_URL", url)
    argv = ["apikey", "create", "--name", "lms", "--scopes", "ai:use", "--zone", "mpcstudy"]
    assert run(*argv, "--ttl", "7d") == 0
    out, err = _out(capsys)
    key = out.strip()
    assert key.startswith("mk_") and out.count("\n") == 1 and "shown only now" in err
    key_id = key.split("_")[1]
    principal = _verify(db, key)
    assert principal.subject == "service:lms" and principal.zones == {"mpcstudy"}
    assert run("apikey", "list") == 0
    listing = _out(capsys)[0]
    assert key_id in listing and "mpcstudy" in listing and "lms" in listing
    assert key.removeprefix(f"mk_{key_id}_") not in listing
    assert run("apikey", "revoke", key_id) == 0
    assert run("apikey", "revoke", "000000000000") == 2
    assert "no API key" in _out(capsys)[1]
    with pytest.raises(InvalidCredentials, match="revoked"):
        _verify(db, key)
    assert run("apikey", "create", "--name", "bad name") == 2
    assert principal.group is None
    assert run(*argv, "--name", "school-lms", "--group", "school-07") == 0
    out, err = _out(capsys)
    assert "group school-07" in err
    assert _verify(db, out.strip()).group == "school-07"
    assert run("apikey", "list") == 0
    assert "school-07" in _out(capsys)[0]
    assert run(*argv, "--group", "two words") == 2
    assert "group must be" in _out(capsys)[1]
    db.close()


def test_apikey_without_a_migrated_database_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEGACITY_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    assert run("apikey", "list") == 1
    assert "megacity db upgrade" in _out(capsys)[1]


def _verify(db: Database, key: str) -> Principal:
    return asyncio.run(ApiKeyVerifier(db, cache_s=0).verify(key))
