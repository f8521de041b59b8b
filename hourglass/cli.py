"""The `hourglass` command: one entry point, a subcommand per process or task."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
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


def cmd_token(args: argparse.Namespace) -> int:
    """Print a new API token, alone on stdout."""
    import psycopg

    from dispatcher.store.tokens import create
    from schemas.states import Role

    with psycopg.connect(_cfg(args).require_database(), autocommit=True) as conn:
        try:
            token = create(conn, Role(args.role), args.customer, args.person)
        except psycopg.errors.ForeignKeyViolation:
            print(f"hourglass: no such {'customer' if args.customer else 'person'} in the fleet;"
                  " load the fleet file first", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"hourglass: {exc}", file=sys.stderr)
            return 2
    print(token)
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

    cfg = _cfg(args)
    return serve(cfg.require_database(), cfg.http_host, cfg.http_port, cfg.dispatcher.tick_s,
                 cfg.dispatcher.timer_policy(), cfg.notify)


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
    tok = add("token", help="API tokens").add_subparsers(dest="token", required=True).add_parser(
        "create", help="print a new token")
    tok.add_argument("--role", required=True, choices=["customer", "technician", "manager",
                                                        "admin"])
    tok.add_argument("--customer")
    tok.add_argument("--person")
    tok.set_defaults(func=cmd_token)
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
    sp = add("spares", help="spare parts stock").add_subparsers(dest="spares", required=True)
    sp_import = sp.add_parser("import", help="set counts from a CSV or YAML file "
                              "(site, part, kind, count)")
    sp_import.add_argument("file")
    sp_adjust = sp.add_parser("adjust", help="add or remove parts of one (site, part)")
    sp_adjust.add_argument("--site", required=True)
    sp_adjust.add_argument("--part", required=True)
    sp_adjust.add_argument("--delta", required=True, type=int, help="e.g. 3 or -1")
    sp_adjust.add_argument("--reason", default="adjust", help="why, kept in the ledger")
    sp_list = sp.add_parser("list", help="the stock, as a table")
    sp_list.add_argument("--site")
    for sp_cmd in (sp_import, sp_adjust, sp_list):
        sp_cmd.set_defaults(func=cmd_spares)
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
