"""The operator's access commands: `hourglass pki …` and `hourglass broker acl`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path


def cmd_pki(args: argparse.Namespace) -> int:
    """Create the CA, issue, revoke or list certificates."""
    from hourglass.pki import Authority, PKIError

    ca, now = Authority(args.dir), datetime.now(UTC)
    try:
        if args.pki == "init":
            made = ca.init(now)
            print(f"{ca.ca_cert}: {'created' if made else 'exists, left as it is'}",
                  file=sys.stderr)
        elif args.pki == "issue":
            cert, key = ca.issue(args.server or args.host, now, server=bool(args.server),
                                 sans=args.san, days=args.days)
            print(f"{cert}\n{key}")
        elif args.pki == "revoke":
            serial = int(args.serial, 16) if args.serial else None
            for r in ca.revoke(args.name, now, serial):
                print(f"revoked {r.name} serial {r.serial:x}", file=sys.stderr)
            print(f"{ca.crl}: copy it to the broker and restart it "
                  "(SIGHUP refuses new connections only)",
                  file=sys.stderr)
        elif args.pki == "crl":
            # --min-days: only when it expires that soon, so ansible's run is idempotent
            done = ca.refresh_crl(now, args.min_days) if args.min_days is not None \
                else bool(ca.write_crl(now))
            until = ca.crl_valid_until().strftime("%Y-%m-%dT%H:%M:%SZ")
            print(f"{ca.crl}: {'rewritten' if done else 'left as it is'}, valid until {until}")
        else:
            for r in ca.index():
                print(f"{r.serial:x}  {r.kind:<6}  {r.name}  until {r.not_after}"
                      + (f"  revoked {r.revoked_at}" if r.revoked_at else ""))
    except PKIError as exc:
        print(f"hourglass: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_broker_acl(args: argparse.Namespace) -> int:
    """Write the Mosquitto ACL for the fleet file."""
    from dispatcher.fleet import load_fleet_file
    from hourglass.brokeracl import COLLECTOR, render_acl, render_emqx_acl

    extra = Path(args.append).read_text() if args.append else ""
    render = render_emqx_acl if args.format == "emqx" else render_acl
    text = render(load_fleet_file(Path(args.fleet)), args.collector or [COLLECTOR], extra)
    if args.out is None:
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
    return 0


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `pki` and `broker` to the `hourglass` command line."""
    pki = add("pki", help="the fleet's certificate authority").add_subparsers(
        dest="pki", required=True)
    sub = {name: pki.add_parser(name, help=text) for name, text in (
        ("init", "create the CA (ca.key mode 0600) and an empty CRL"),
        ("issue", "sign a client certificate (CN = host id) or the broker's"),
        ("revoke", "revoke a name's certificates and rewrite crl.pem"),
        ("crl", "rewrite crl.pem: it expires a year after it was written, and the broker "
                "then refuses every certificate"),
        ("list", "every certificate issued"))}
    for p in sub.values():
        p.add_argument("--dir", type=Path, default=Path("pki"),
                       help="the PKI directory (default ./pki); keep it off the broker")
        p.set_defaults(func=cmd_pki)
    who = sub["issue"].add_mutually_exclusive_group(required=True)
    who.add_argument("--host", help="a host id (or 'collector'): a client certificate")
    who.add_argument("--server", help="the broker's name: a server certificate")
    sub["issue"].add_argument("--san", action="append", default=[],
                              help="a DNS name or IP the server answers on (repeat; "
                                   "default: --server's name)")
    sub["issue"].add_argument("--days", type=int, default=397)
    sub["crl"].add_argument("--min-days", type=float, default=None,
                            help="only if it expires within this many days")
    sub["revoke"].add_argument("name", help="the host id or server name")
    sub["revoke"].add_argument("--serial", help="only this certificate (hex, `pki list`)")
    acl = add("broker", help="broker access").add_subparsers(dest="broker", required=True) \
        .add_parser("acl", help="write the Mosquitto ACL for the fleet file")
    acl.add_argument("--fleet", required=True, help="the fleet file (hourglass load FILE)")
    acl.add_argument("--out", help="write here instead of stdout")
    acl.add_argument("--collector", action="append",
                     help="the collectors' user name or CN (repeat; default: collector)")
    acl.add_argument("--append", help="a file of ACL lines to add (e.g. an SNMP proxy's)")
    acl.add_argument("--format", choices=["mosquitto", "emqx"], default="mosquitto",
                     help="Mosquitto's acl_file (default) or EMQX's acl.conf")
    acl.set_defaults(func=cmd_broker_acl)
