"""``hgc keys DIR --scenario FILE``: one CURVE keypair per node and the allow-lists.

Writes ``DIR/public/<node>.key`` (every public key) and, per node, ``DIR/nodes/<node>/``:
``secret.key`` (its keypair, mode 0600), ``parent.key`` (its parent's public key) and
``allow/<child>.key`` (the children a parent accepts). Copy or mount only a node's own
folder onto that node and start it with ``--keys`` (env ``HGC_KEYS``); see
docs/operations.md ("Authentication") and docs/raspberry-pi.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hgc.cli import UsageError

HELP = "write CURVE keys for every node of a scenario (one keypair each + parents' allow-lists)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="folder to write (must be empty or new)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--scenario", type=Path, help="scenario YAML: its topology's nodes")
    src.add_argument("--workers-per-edge", help="a topology instead, e.g. 3,3,3")


def _topology(args: argparse.Namespace) -> tuple[int, ...]:
    if args.scenario is not None:
        from common.scenario import ScenarioError, load_scenario

        try:
            return load_scenario(args.scenario).workers_per_edge
        except (OSError, ScenarioError) as exc:
            raise UsageError(f"--scenario {args.scenario}: {exc}") from None
    try:
        wpe = tuple(int(x) for x in args.workers_per_edge.split(","))
    except ValueError:
        raise UsageError(
            f"--workers-per-edge: expected e.g. 3,3,3, got {args.workers_per_edge!r}"
        ) from None
    if not wpe or any(m < 1 for m in wpe):
        raise UsageError(f"--workers-per-edge: every edge needs >= 1 worker, got {wpe}")
    return wpe


def run(args: argparse.Namespace) -> int:
    from common.runtime.security import curve_available, tree_parents, write_keys

    wpe = _topology(args)
    d: Path = args.directory
    if d.exists() and (not d.is_dir() or any(d.iterdir())):
        raise UsageError(f"DIRECTORY: {d} exists and is not an empty folder (keys not replaced)")
    if not curve_available():
        raise UsageError("this pyzmq/libzmq has no CURVE support (zmq.has('curve') is False)")
    nodes = write_keys(d, tree_parents(wpe))
    print(f"wrote {len(nodes)} keypairs to {d}: public keys in {d / 'public'}")
    print(f"give each node only its own folder {d / 'nodes'}/<node> (start it with --keys)")
    return 0
