"""Kernel link shaping as tc commands: the qdiscs (tbf, or htb towards one peer, with netem
under them where the kernel has it) that make one interface behave like a node's link.

Pure command construction, shared by the launcher's network namespaces
(``hgc.testbed.netns``) and the container entry point (``services.common.entrypoint``),
which run the commands.
"""

from __future__ import annotations

from dataclasses import dataclass

UNSHAPED_RATE_BIT = 10_000_000_000  # the htb default class: 10 Gbit, i.e. not a bottleneck


@dataclass(frozen=True)
class Shape:
    """How one node's veth is shaped. ``rate_bytes_per_s`` None or inf = no rate limit;
    ``peer`` restricts the shaping to traffic with that node (htb), None = all traffic (tbf).
    ``delay_s``/``jitter_s``/``loss`` are applied only when netem is available."""

    rate_bytes_per_s: float | None = None
    peer: str | None = None
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0

    @property
    def has_rate(self) -> bool:
        return self.rate_bytes_per_s is not None and self.rate_bytes_per_s != float("inf")

    @property
    def has_netem_part(self) -> bool:
        return self.delay_s > 0 or self.jitter_s > 0 or self.loss > 0


def _netem_args(shape: Shape) -> list[str]:
    args = ["netem", "limit", "100000"]
    if shape.delay_s > 0 or shape.jitter_s > 0:
        args += ["delay", f"{shape.delay_s * 1e3:.3f}ms"]
        if shape.jitter_s > 0:
            args += [f"{shape.jitter_s * 1e3:.3f}ms"]
    if shape.loss > 0:
        args += ["loss", f"{shape.loss * 100:.4f}%"]
    return args


def _rate_bit(shape: Shape) -> int:
    assert shape.rate_bytes_per_s is not None
    return max(8000, round(shape.rate_bytes_per_s * 8))


def reshape_commands(
    dev: str, shape: Shape, peer_address: str | None, netem: bool, match: str = "dst"
) -> tuple[list[str], list[list[str]]]:
    """A link that changes mid-run (``set-link``): the command that removes ``dev``'s root
    qdisc (it may fail harmlessly when there was none: the caller ignores its status), then
    :func:`tc_commands` for the new shape."""
    return ["qdisc", "del", "dev", dev, "root"], tc_commands(dev, shape, peer_address, netem, match)


def tc_commands(
    dev: str, shape: Shape, peer_address: str | None, netem: bool, match: str = "dst"
) -> list[list[str]]:
    """The ``tc`` argument lists that shape egress on ``dev`` (pure, unit-tested).

    ``match`` is ``dst`` on the node's own eth0 (traffic to the peer) and ``src`` on the
    hub end (traffic from the peer)."""
    use_netem = netem and shape.has_netem_part
    if shape.peer is None:
        if not shape.has_rate:
            return [["qdisc", "add", "dev", dev, "root", *_netem_args(shape)]] if use_netem else []
        rate = _rate_bit(shape)
        # burst: as small as the kernel allows (two MTU-sized frames, or one 4 ms tick of
        # tokens at HZ=250), so even a single small message pays size / rate as the model
        # says instead of slipping through on saved-up tokens; limit: ~1 s of queue so TCP
        # is slowed, not dropped
        burst = max(3_000, rate // 8 // 250)
        limit = max(200_000, rate // 8)
        cmds = [
            [
                "qdisc",
                "add",
                "dev",
                dev,
                "root",
                "handle",
                "1:",
                "tbf",
                "rate",
                f"{rate}bit",
                "burst",
                str(burst),
                "limit",
                str(limit),
            ]
        ]
        if use_netem:
            cmds.append(
                ["qdisc", "add", "dev", dev, "parent", "1:1", "handle", "10:", *_netem_args(shape)]
            )
        return cmds
    if peer_address is None:
        raise ValueError(f"shape restricted to peer {shape.peer!r} needs the peer's address")
    rate = _rate_bit(shape) if shape.has_rate else UNSHAPED_RATE_BIT
    cmds = [
        ["qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "20"],
        [
            "class",
            "add",
            "dev",
            dev,
            "parent",
            "1:",
            "classid",
            "1:10",
            "htb",
            "rate",
            f"{rate}bit",
            "ceil",
            f"{rate}bit",
        ],
        [
            "class",
            "add",
            "dev",
            dev,
            "parent",
            "1:",
            "classid",
            "1:20",
            "htb",
            "rate",
            f"{UNSHAPED_RATE_BIT}bit",
        ],
        [
            "filter",
            "add",
            "dev",
            dev,
            "parent",
            "1:",
            "protocol",
            "ip",
            "prio",
            "1",
            "u32",
            "match",
            "ip",
            match,
            f"{peer_address}/32",
            "flowid",
            "1:10",
        ],
    ]
    if use_netem:
        cmds.append(
            ["qdisc", "add", "dev", dev, "parent", "1:10", "handle", "10:", *_netem_args(shape)]
        )
    return cmds
