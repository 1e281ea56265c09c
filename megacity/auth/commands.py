"""`megacity token|keys|apikey`: issue tokens, manage signing keys and service API keys.

Output meant for scripts (a token, a kid, an API key) is the only thing on stdout;
everything else goes to stderr. Exit codes: 0 ok, 1 the database failed, 2 a usage or
validation error (one line on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from megacity.auth.keys import ALGORITHMS, KeySet, NoSigningKey, generate_key, retire_key
from megacity.auth.principal import ALL_ZONES

KEYS_DIR_ENV = "MEGACITY_AUTH_KEYS_DIR"
_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class UsageError(ValueError):
    """A bad argument: reported in one line, exit code 2."""


def parse_ttl(text: str) -> int:
    """Seconds from "3600", "45s", "30m", "1h" or "7d"."""
    match = _TTL.match(text.strip())
    if match is None:
        raise UsageError(f"invalid ttl {text!r}: use e.g. 3600, 30m, 1h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the token, keys and apikey commands to the `megacity` parser."""
    _token_commands(sub)
    _keys_commands(sub)
    _apikey_commands(sub)


def _token_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="access tokens (JWT) signed with a region's key")
    actions = token.add_subparsers(metavar="ACTION")
    issue = actions.add_parser("issue", help="print a signed access token on stdout")
    issue.add_argument("--sub", required=True, help="the user or service the token is for")
    _zone_args(issue)
    issue.add_argument("--scopes", default="ai:use", help="comma-separated (default: ai:use)")
    issue.add_argument("--ttl", default="1h", help="lifetime: 3600, 30m, 1h, 7d (default 1h)")
    issue.add_argument("--region", required=True, help="the region whose key signs it")
    issue.add_argument(
        "--group",
        help="the user group (a school, a class, a plan) whose usage the dashboard counts "
        "the holder's requests under (default: none, shown as '-')",
    )
    _keys_dir_arg(issue)
    issue.set_defaults(func=_guarded(_token_issue))


def _keys_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="token signing keys per region (<keys-dir>/<region>/)")
    actions = keys.add_subparsers(metavar="ACTION")
    for name, helptext in (
        ("generate", "create a signing key for a region; prints its kid"),
        ("rotate", "create a new signing key; older keys keep verifying until retired"),
    ):
        cmd = actions.add_parser(name, help=helptext)
        cmd.add_argument("--region", required=True)
        cmd.add_argument("--alg", choices=ALGORITHMS, default="ES256")
        _keys_dir_arg(cmd)
        cmd.set_defaults(func=_guarded(_keys_generate), rotate=name == "rotate")
    listing = actions.add_parser("list", help="the keys on disk (all regions, or one)")
    listing.add_argument("--region")
    _keys_dir_arg(listing)
    listing.set_defaults(func=_guarded(_keys_list))
    retire = actions.add_parser("retire", help="delete a key; its tokens stop verifying")
    retire.add_argument("--region", required=True)
    retire.add_argument("--kid", required=True, help="write --kid=K when K starts with '-'")
    _keys_dir_arg(retire)
    retire.set_defaults(func=_guarded(_keys_retire))


def _apikey_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apikey = sub.add_parser("apikey", help="service API keys (stored hashed in the database)")
    actions = apikey.add_subparsers(metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--name", required=True, help="the service that will hold the key")
    create.add_argument("--scopes", default="ai:use", help="comma-separated (default: ai:use)")
    _zone_args(create, default_all=True)
    create.add_argument("--ttl", help="lifetime: 3600, 30m, 1h, 7d (default: no expiry)")
    create.add_argument(
        "--group",
        help="the user group (a school, a class, a plan) whose usage the dashboard counts "
        "the key's requests under (default: none, shown as '-')",
    )
    create.set_defaults(func=_guarded(_apikey_create))
    actions.add_parser("list", help="every key (never the secret)").set_defaults(
        func=_guarded(_apikey_list)
    )
    revoke = actions.add_parser("revoke", help="revoke a key (routers stop accepting it)")
    revoke.add_argument("id", help="the key id (the part after mk_)")
    revoke.set_defaults(func=_guarded(_apikey_revoke))


def _zone_args(parser: argparse.ArgumentParser, *, default_all: bool = False) -> None:
    also = " (default: every zone)" if default_all else ""
    parser.add_argument("--zone", action="append", default=[], help=f"a zone, repeatable{also}")
    parser.add_argument("--zones", help="comma-separated zones; '*' for every zone")


def _keys_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys-dir", type=Path, help=f"default: ${KEYS_DIR_ENV}, else <data_dir>/keys"
    )


def _guarded(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """The command, with bad input reported as one line and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (ValueError, NoSigningKey) as exc:
            print(f"megacity: {exc}", file=sys.stderr)
            return 2

    return run


def keys_dir(given: Path | None) -> Path:
    """--keys-dir, else $MEGACITY_AUTH_KEYS_DIR, else Settings' auth_keys_dir or data_dir/keys."""
    if given is not None:
        return given
    if os.environ.get(KEYS_DIR_ENV):
        return Path(os.environ[KEYS_DIR_ENV])
    from megacity.config.settings import Settings

    settings = Settings()  # environment only: no topology needed
    configured: Path | None = getattr(settings, "auth_keys_dir", None)
    return configured or Path(settings.data_dir) / "keys"


def _zones(args: argparse.Namespace, *, default_all: bool) -> list[str] | None:
    zones = [*args.zone, *(args.zones.split(",") if args.zones else [])]
    zones = [z.strip() for z in zones if z.strip()]
    if not zones:
        if default_all:
            return None
        raise UsageError("--zone or --zones is required ('*' for every zone)")
    return None if ALL_ZONES in zones else zones


def _scopes(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _token_issue(args: argparse.Namespace) -> int:
    from megacity.auth.tokens import issue_token

    folder = keys_dir(args.keys_dir)
    ttl = parse_ttl(args.ttl)
    keys = KeySet(folder, trusted_regions=[args.region])
    token = issue_token(
        keys,
        args.region,
        subject=args.sub,
        scopes=_scopes(args.scopes),
        zones=_zones(args, default_all=False),
        ttl_s=ttl,
        group=args.group,
    )
    expires = datetime.fromtimestamp(time.time() + ttl, UTC).isoformat(timespec="seconds")
    group = f", group {args.group}" if args.group else ""
    print(f"token for {args.sub} (region {args.region}{group}), expires {expires}", file=sys.stderr)
    print(token)
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    folder = keys_dir(args.keys_dir)
    kid = generate_key(folder, args.region, args.alg)
    print(f"{args.alg} key {kid} for region {args.region} in {folder}", file=sys.stderr)
    if args.rotate:
        print(
            "new tokens are signed with it; older keys keep verifying until"
            f" `megacity keys retire --region {args.region} --kid <kid>`",
            file=sys.stderr,
        )
    print(kid)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    folder = keys_dir(args.keys_dir)
    keys = KeySet(folder, trusted_regions=[args.region] if args.region else None)
    signers: dict[str, str] = {}
    for region in sorted({k.region for k in keys.loaded()}):
        with contextlib.suppress(NoSigningKey):
            signers[region] = keys.signing_key(region)[0]
    rows = [("REGION", "KID", "ALG", "CREATED", "SIGNS")]
    for key in keys.loaded():
        created = datetime.fromtimestamp(key.created, UTC).isoformat(timespec="seconds")
        signs = "yes" if signers.get(key.region) == key.kid else ""
        rows.append((key.region, key.kid, key.alg, created, signs))
    _print_table(rows)
    return 0


def _keys_retire(args: argparse.Namespace) -> int:
    if not retire_key(keys_dir(args.keys_dir), args.region, args.kid):
        raise UsageError(f"no key {args.kid} in region {args.region}")
    print(f"retired key {args.kid} of region {args.region}", file=sys.stderr)
    return 0


def _apikey_create(args: argparse.Namespace) -> int:
    from megacity.auth.apikeys import create_api_key

    ttl = parse_ttl(args.ttl) if args.ttl else None
    zones = _zones(args, default_all=True)
    issued = _with_database(
        lambda db: create_api_key(db, args.name, _scopes(args.scopes), zones, ttl, args.group)
    )
    if issued is None:
        return 1
    where = "every zone" if issued.zones is None else ", ".join(sorted(issued.zones))
    group = f"; group {issued.group}" if issued.group else ""
    print(
        f"API key {issued.id} for {issued.name}: {' '.join(sorted(issued.scopes))}; {where}{group};"
        " it is shown only now, store it safely",
        file=sys.stderr,
    )
    print(issued.key)
    return 0


def _apikey_list(args: argparse.Namespace) -> int:
    from megacity.auth.apikeys import list_api_keys

    found = _with_database(list_api_keys)
    if found is None:
        return 1
    rows = [
        ("ID", "NAME", "SCOPES", "ZONES", "GROUP", "CREATED", "EXPIRES", "REVOKED", "LAST USED")
    ]
    for k in found:
        zones = "*" if k.zones is None else ",".join(sorted(k.zones))
        when = (_when(t) for t in (k.created_at, k.expires_at, k.revoked_at, k.last_used_at))
        rows.append((k.id, k.name, ",".join(sorted(k.scopes)), zones, k.group or "-", *when))
    _print_table(rows)
    return 0


def _apikey_revoke(args: argparse.Namespace) -> int:
    from megacity.auth.apikeys import revoke_api_key

    done = _with_database(lambda db: revoke_api_key(db, args.id))
    if done is None:
        return 1
    if not done:
        raise UsageError(f"no API key {args.id!r}")
    print(
        f"revoked API key {args.id} (routers stop accepting it within their cache time)",
        file=sys.stderr,
    )
    return 0


def _with_database(work: Callable[[Any], Any]) -> Any:
    """work(db) on the database of the settings; None (after a message) when it fails."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from megacity.config.settings import Settings
    from megacity.db import DatabaseError, build_database

    try:
        db = build_database(Settings())
    except ValidationError as exc:
        raise UsageError(f"invalid settings (MEGACITY_* environment): {exc}") from None
    try:
        return work(db)
    except (SQLAlchemyError, DatabaseError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            f"megacity: the database failed: {first} (run `megacity db upgrade`?)", file=sys.stderr
        )
        return None
    finally:
        db.close()


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
