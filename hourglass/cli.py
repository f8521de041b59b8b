"""The `hourglass` command: one entry point, a subcommand per process or task."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.settings import ConfigError
from hourglass.config import Config, load_config
from hourglass.signals import stop_on_signals


def _cfg(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply database migrations."""
    from schemas.migrate import migrate

    applied = migrate(_cfg(args).require_database(), log=lambda m: print(m, file=sys.stderr))
    print(f"{len(applied)} migration(s) applied", file=sys.stderr)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    """Load or update the fleet file."""
    import psycopg

    from dispatcher.fleet import load_fleet_file
    from dispatcher.store.fleet import apply_fleet

    fleet = load_fleet_file(Path(args.file))
    with psycopg.connect(_cfg(args).require_database()) as conn:
        counts = apply_fleet(conn, fleet)
    print(", ".join(f"{n} {table}" for table, n in counts.items()), file=sys.stderr)
    return 0


def _span(text: str) -> timedelta:
    """'90d', '12h', '15m', '30s' -> a timedelta."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a length like 15m, 12h or 90d")
    return timedelta(seconds=float(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]])


def _when(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if t else "-"


def cmd_token(args: argparse.Namespace) -> int:
    """Print a new API token, alone on stdout."""
    import psycopg

    from dispatcher.store.tokens import create
    from schemas.states import Role

    expires = datetime.now(UTC) + args.expires if args.expires else None
    with psycopg.connect(_cfg(args).require_database(), autocommit=True) as conn:
        try:
            token = create(conn, Role(args.role), args.customer, args.person, expires)
        except psycopg.errors.ForeignKeyViolation:
            print(f"hourglass: no such {'customer' if args.customer else 'person'} in the fleet;"
                  " load the fleet file first", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"hourglass: {exc}", file=sys.stderr)
            return 2
    print(token)
    return 0


def cmd_credentials(args: argparse.Namespace) -> int:
    """List tokens or sessions (id first, never the secret), or revoke one."""
    import psycopg

    from dispatcher.store import auth, tokens

    kind = "session" if args.command == "session" else "token"
    now = datetime.now(UTC)
    with psycopg.connect(_cfg(args).require_database(), autocommit=True) as conn:
        if args.action == "revoke":
            if not tokens.revoke(conn, args.id, "cli", now, kind=kind):
                print(f"hourglass: no live {kind} {args.id}; `hourglass {args.command} list` "
                      "shows them", file=sys.stderr)
                return 2
            auth.audit(conn, f"{kind}_revoked", now, credential=args.id, who="cli")
            print(f"{kind} {args.id} revoked")
            return 0
        rows = [c for c in tokens.listed(conn, kind) if args.all or c.live(now)]
    print(f"{'id':>6}  {'role':<10} {'who':<24} {'created':<16} {'last used':<16} "
          f"{'expires':<16} {'state':<8}" + (" device" if kind == "session" else ""))
    for c in rows:
        who = c.person or (f"{c.customer} {c.email}" if c.email else c.customer) or "-"
        state = "revoked" if c.revoked_at else ("live" if c.live(now) else "expired")
        print(f"{c.id:>6}  {c.role:<10} {who[:24]:<24} {_when(c.created_at):<16} "
              f"{_when(c.last_used_at):<16} {_when(c.expires_at):<16} {state:<8}"
              + (f" {(c.device or '-')[:60]}" if kind == "session" else ""))
    return 0


def cmd_signin_link(args: argparse.Namespace) -> int:
    """Print a one-time sign-in URL, alone on stdout."""
    import psycopg

    from dispatcher.store import auth
    from schemas.states import Role

    cfg = _cfg(args)
    now = datetime.now(UTC)
    with psycopg.connect(cfg.require_database(), autocommit=True) as conn:
        try:
            if args.person:
                who = auth.person_role(conn, args.person)
            else:
                if not args.customer or not args.email or "@" not in args.email:
                    raise ValueError("give --person ID, or --customer C --email ADDRESS")
                who = auth.Person(Role.CUSTOMER, args.customer, None, args.email.lower())
            code = auth.create_code(conn, who, args.ttl, "cli", now)
        except psycopg.errors.ForeignKeyViolation:
            print(f"hourglass: no customer {args.customer!r} in the fleet; load the fleet "
                  "file first", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"hourglass: {exc}", file=sys.stderr)
            return 2
        auth.audit(conn, "signin_link_made", now, who=who.actor, by="cli")
    print(f"{cfg.auth.base_url(cfg.http_addr)}/signin/{code}")
    return 0


def cmd_collector(args: argparse.Namespace) -> int:
    """Run the collector until SIGTERM/SIGINT."""
    from collector.service import Collector

    c = Collector(_cfg(args))
    c.cfg.require_database()
    stop_on_signals(c.stop)
    c.run()
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """List the newest refused payloads with their reasons."""
    import psycopg

    with psycopg.connect(_cfg(args).require_database()) as conn:
        for at, topic, reason, payload in conn.execute(
                "SELECT received_at, topic, reason, payload FROM dead_letters"
                " ORDER BY id DESC LIMIT %s", (args.limit,)):
            print(f"{at:%Y-%m-%dT%H:%M:%SZ}  {topic}  {reason}  {bytes(payload)[:80]!r}")
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    """List the detection rules."""
    from collector.rules import describe

    for r in describe():
        print(f"{r['name']:<24} {r['component']:<21} {r['class']:<10} {r['condition']}"
              f"  [evidence: {r['evidence']}]")
    return 0


def cmd_dispatcher(args: argparse.Namespace) -> int:
    """Run the dispatcher loop and the HTTP server until SIGTERM/SIGINT."""
    from dispatcher.server import serve
    from dispatcher.service.settings import timer_policy

    cfg = _cfg(args)
    return serve(cfg.require_database(), cfg.http_host, cfg.http_port, cfg.dispatcher.tick_s,
                 timer_policy(cfg.dispatcher), cfg.notify, cfg.auth,
                 cfg.dispatcher.serials.overrides(), push=cfg.push)


def cmd_credits_export(args: argparse.Namespace) -> int:
    """Print one month's credit ledger for billing."""
    import psycopg

    from dispatcher.store.credits import render, rows

    with psycopg.connect(_cfg(args).require_database()) as conn:
        try:
            items = rows(conn, args.month)
        except ValueError as exc:
            print(f"hourglass: {exc}", file=sys.stderr)
            return 2
    sys.stdout.write(render(items, args.month, args.format))
    return 0


def _instant(text: str) -> datetime | timedelta:
    """An RFC 3339 time with its offset (2026-12-07T15:00:00Z), or a length back from now
    (90m, 2h, 1d)."""
    try:
        return _span(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a time with its offset (2026-12-07T15:00:00Z) nor a length"
            " back from now (90m, 2h, 1d)")
    return t


def cmd_history(args: argparse.Namespace) -> int:
    """Print a host's telemetry: one component's metric, one component, or everything."""
    import psycopg

    from dispatcher.store import telemetry

    now = datetime.now(UTC)
    until = args.until or now
    until = now - until if isinstance(until, timedelta) else until
    since = args.since or timedelta(hours=1)
    since = until - since if isinstance(since, timedelta) else since
    try:
        with psycopg.connect(_cfg(args).require_database(), autocommit=True) as conn:
            items = telemetry.points(conn, args.host, since, until, args.component, args.metric)
    except telemetry.HistoryError as exc:
        print(f"hourglass: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(telemetry.render_json(items, args.host, since, until))
    elif items:
        sys.stdout.write(telemetry.render_table(items, one_series=args.metric is not None))
    else:
        print(f"{args.host}: no values in that window", file=sys.stderr)
    return 0


def cmd_spares(args: argparse.Namespace) -> int:
    """Import, adjust or list the spare parts stock."""
    import getpass
    from datetime import UTC, datetime

    import psycopg

    from dispatcher.store import spares

    now, actor = datetime.now(UTC), f"cli:{getpass.getuser()}"
    try:
        with psycopg.connect(_cfg(args).require_database(), autocommit=True) as conn:
            if args.spares == "import":
                n = spares.import_rows(conn, spares.read_spares_file(Path(args.file)), actor,
                                       now)
                print(f"{n} spare row(s) changed", file=sys.stderr)
            elif args.spares == "adjust":
                after = spares.adjust(conn, args.site, args.part, args.delta, args.reason, actor,
                                      now)
                print(f"{args.site}/{args.part}: {after} on the shelf", file=sys.stderr)
            elif args.spares == "locate":
                spares.locate(conn, args.site, args.part, args.location)
                print(f"{args.site}/{args.part}: at {args.location or '(no location)'}",
                      file=sys.stderr)
            else:
                sys.stdout.write(spares.render(spares.stock(conn, args.site)))
    except spares.SpareError as exc:
        print(f"hourglass: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check database, broker, collectors, dispatchers, SMTP and push; 1 when one fails."""
    from hourglass.doctor import run

    cfg = _cfg(args)
    return run(cfg, args.collector_url or [f"http://{cfg.collector.http_addr}"],
               args.dispatcher_url or [f"http://{cfg.http_addr}"])


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run virtual agents over real MQTT."""
    from hourglass.simulate import main as simulate

    return simulate(args, _cfg(args))


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything on one machine."""
    from hourglass.demo import main as demo

    return demo(args)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="hourglass", description="Hourglass: hardware fixed "
                                "within one hour, or it's free.")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML configuration file (every key can be overridden by HOURGLASS_*)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    add: Callable[..., argparse.ArgumentParser] = sub.add_parser
    add("db", help="database tasks").add_subparsers(dest="db", required=True).add_parser(
        "migrate", help="apply migrations").set_defaults(func=cmd_migrate)
    load = add("load", help="load or update the fleet file")
    load.add_argument("file")
    load.set_defaults(func=cmd_load)
    toks = add("token", help="machine tokens").add_subparsers(dest="action", required=True)
    tok = toks.add_parser("create", help="print a new token")
    tok.add_argument("--role", required=True, choices=["customer", "technician", "manager",
                                                        "admin"])
    tok.add_argument("--customer")
    tok.add_argument("--person")
    tok.add_argument("--expires", type=_span, help="e.g. 90d: refused after that")
    tok.set_defaults(func=cmd_token)
    for what in ("token", "session"):
        group = toks if what == "token" else add(
            "session", help="people's sessions").add_subparsers(dest="action", required=True)
        ls = group.add_parser("list", help=f"the live {what}s, id first (never the secret)")
        ls.add_argument("--all", action="store_true", help="revoked and expired ones too")
        ls.set_defaults(func=cmd_credentials)
        rv = group.add_parser("revoke", help=f"end one {what} at once")
        rv.add_argument("id", type=int)
        rv.set_defaults(func=cmd_credentials)
    link = add("signin-link", help="print a one-time sign-in URL")
    link.add_argument("--person", help="a technician or manager id of the fleet file")
    link.add_argument("--customer")
    link.add_argument("--email", help="the customer's person's address")
    link.add_argument("--ttl", type=_span, default=timedelta(minutes=15),
                      help="how long the link works (default 15m)")
    link.set_defaults(func=cmd_signin_link)
    col = add("collector", help="the collector").add_subparsers(dest="collector", required=True)
    col.add_parser("run", help="run the collector").set_defaults(func=cmd_collector)
    dl = col.add_parser("dead-letters", help="list refused payloads")
    dl.add_argument("--limit", type=int, default=50)
    dl.set_defaults(func=cmd_dead_letters)
    add("rules", help="list detection rules").set_defaults(func=cmd_rules)
    dis = add("dispatcher", help="the dispatcher").add_subparsers(dest="dispatcher",
                                                                   required=True)
    dis.add_parser("run", help="run the loop and the HTTP server").set_defaults(
        func=cmd_dispatcher)
    exp = add("credits", help="the credit ledger").add_subparsers(
        dest="credits", required=True).add_parser("export", help="one month's credits")
    exp.add_argument("--month", required=True, help="YYYY-MM (UTC, by issue time)")
    exp.add_argument("--format", choices=["csv", "json"], default="csv")
    exp.set_defaults(func=cmd_credits_export)
    hist = add("history", help="a host's telemetry: one component's metric, one component,"
               " or everything, over the last hour or --since/--until")
    hist.add_argument("host", help="the host id of the fleet file, e.g. web-01")
    hist.add_argument("component", nargs="?", help="e.g. disk:S1234 or fan:fan1 (default all)")
    hist.add_argument("metric", nargs="?", help="e.g. smart.temperature_c (default all)")
    hist.add_argument("--since", type=_instant, default=None,
                      help="start: a time with its offset or a length before --until"
                           " (default 1h)")
    hist.add_argument("--until", type=_instant, default=None,
                      help="end: a time with its offset or a length back from now"
                           " (default now)")
    hist.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    hist.set_defaults(func=cmd_history)
    sp = add("spares", help="spare parts stock").add_subparsers(dest="spares", required=True)
    sp_import = sp.add_parser("import", help="set counts from a CSV or YAML file "
                              "(site, part, kind, count; optional location)")
    sp_import.add_argument("file")
    sp_adjust = sp.add_parser("adjust", help="add or remove parts of one (site, part)")
    sp_adjust.add_argument("--site", required=True)
    sp_adjust.add_argument("--part", required=True)
    sp_adjust.add_argument("--delta", required=True, type=int, help="e.g. 3 or -1")
    sp_adjust.add_argument("--reason", default="adjust", help="why, kept in the ledger")
    sp_list = sp.add_parser("list", help="the stock, as a table")
    sp_list.add_argument("--site")
    sp_locate = sp.add_parser("locate", help="say where a (site, part) stands, for the job card")
    sp_locate.add_argument("--site", required=True)
    sp_locate.add_argument("--part", required=True)
    sp_locate.add_argument("--location", required=True,
                           help='e.g. "Store room B, shelf 3, bin 12" (at most 64; "" clears)')
    for sp_cmd in (sp_import, sp_adjust, sp_list, sp_locate):
        sp_cmd.set_defaults(func=cmd_spares)
    from hourglass.opscli import add_commands as ops_commands

    ops_commands(add)  # pki, broker
    from hourglass.simulate import add_arguments as sim_args

    sim = add("simulate", help="virtual agents over real MQTT")
    sim_args(sim)
    sim.set_defaults(func=cmd_simulate)
    demo = add("demo", help="everything at once on one machine")
    demo.add_argument("--port", type=int, default=8080, help="web port (next free if taken)")
    demo.add_argument("--data", type=Path, default=None,
                      help="folder for the embedded database and broker (default .hourglass/)")
    demo.add_argument("--hosts", type=int, default=50)
    demo.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto",
                      help="without HOURGLASS_MQTT_URL: mosquitto if installed (auto), or the "
                           "in-process MQTT 3.1.1 broker (embedded)")
    demo.add_argument("--fail-every", type=float, default=60.0,
                      help="seconds between injected failures")
    demo.set_defaults(func=cmd_demo)
    doc = add("doctor", help="check every part and say what to do; exit 1 when one fails")
    doc.add_argument("--collector-url", action="append", metavar="URL",
                     help="a collector's health address (repeat; default: collector.http_addr)")
    doc.add_argument("--dispatcher-url", action="append", metavar="URL",
                     help="a dispatcher's address (repeat; default: http_addr)")
    doc.set_defaults(func=cmd_doctor)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hourglass` console script."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        print(f"hourglass: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from dispatcher.fleet import FleetError

        if isinstance(exc, FleetError):
            print(f"hourglass: {exc}", file=sys.stderr)
            return 2
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            print(f"hourglass: cannot reach the database: {exc}".rstrip(), file=sys.stderr)
            return 2
        raise
    return result


if __name__ == "__main__":
    sys.exit(main())
