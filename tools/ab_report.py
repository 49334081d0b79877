"""`make ab-report`: the experiment readout, from the event store.

Every event a client records carries the attribution token of the response it came from (Search/Recommend), and the
gateway stores the token's variant with it. Joined on the token, each response is one trial per arm:
impression -> click -> add-to-cart -> purchase. Per arm: responses with any event, event counts, and the share
of responses reaching each stage with a 95% Wilson interval; per other arm, the difference from the control arm
(the first of SHOP_VARIANTS) with a 95% Newcombe interval; then the same per Recommend shelf (the shelf the token
names); then the funnel per explanation arm (what explained responses showed, SHOP_EXPLANATION_ARMS; the token names
it), with the difference from the first explanation arm. Writes reports/ab.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from scipy.stats import binomtest

from libs.config import REPORTS_DIR, EventStoreSettings, ExperimentSettings, artifacts_dir
from libs.domain import EventKind
from libs.events.base import Attributed
from libs.experiments import ExplanationArms, Variants, explanation_arm_of_stored, shelf_of_stored

STAGES = (EventKind.IMPRESSION, EventKind.CLICK, EventKind.ADD_TO_CART, EventKind.PURCHASE)
RATES = STAGES[1:]  # shares of responses; every response with an event is a trial


@dataclass(frozen=True)
class Rate:
    successes: int
    trials: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class Arm:
    variant: str
    responses: int
    events: dict[str, int]
    rates: dict[str, Rate]


@dataclass(frozen=True)
class Difference:
    variant: str
    control: str
    stage: str
    diff: float
    low: float
    high: float


def wilson(successes: int, trials: int) -> Rate:
    if trials == 0:
        return Rate(0, 0, math.nan, math.nan, math.nan)
    ci = binomtest(successes, trials).proportion_ci(0.95, method="wilson")
    return Rate(successes, trials, successes / trials, float(ci.low), float(ci.high))


def newcombe(control: Rate, other: Rate) -> tuple[float, float, float]:
    """Difference other - control with Newcombe's hybrid score interval (from the two Wilson intervals)."""
    d = other.rate - control.rate
    low = d - math.sqrt((other.rate - other.low) ** 2 + (control.high - control.rate) ** 2)
    high = d + math.sqrt((other.high - other.rate) ** 2 + (control.rate - control.low) ** 2)
    return d, low, high


def readout(events: Sequence[Attributed], order: Sequence[str] = ()) -> tuple[list[Arm], list[Difference]]:
    """Arms in `order` first (the first is the control), then any other variant seen, alphabetically."""
    reached: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # variant -> kind -> tokens
    tokens: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for token, variant, kind, _product in events:
        tokens[variant].add(token)
        reached[variant][kind].add(token)
        counts[variant][kind] += 1
    variants = [v for v in order if v in tokens] + sorted(v for v in tokens if v not in order)
    arms = [
        Arm(
            v,
            len(tokens[v]),
            {k.value: counts[v][k.value] for k in STAGES},
            {k.value: wilson(len(reached[v][k.value]), len(tokens[v])) for k in RATES},
        )
        for v in variants
    ]
    diffs = [
        Difference(arm.variant, arms[0].variant, k.value, *newcombe(arms[0].rates[k.value], arm.rates[k.value]))
        for arm in arms[1:]
        for k in RATES
    ]
    return arms, diffs


def by_shelf(events: Sequence[Attributed]) -> dict[str, list[Attributed]]:
    """Recommend's events per shelf its token names, shelves in alphabetical order (Search's events: none)."""
    groups: dict[str, list[Attributed]] = defaultdict(list)
    for event in events:
        if shelf := shelf_of_stored(event[0]):
            groups[shelf].append(event)
    return dict(sorted(groups.items()))


def by_explanation_arm(events: Sequence[Attributed]) -> list[Attributed]:
    """The events of explained responses, each with the explanation arm its token names in place of the variant
    (the arms are assigned independently of the variant, so each arm's funnel spans every variant alike)."""
    return [
        (token, arm, kind, product) for token, _, kind, product in events if (arm := explanation_arm_of_stored(token))
    ]


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def markdown(arms: Sequence[Arm], diffs: Sequence[Difference], source: str) -> str:
    head = (
        "| arm | responses | "
        + " | ".join(k.value.lower() + "s" for k in STAGES)
        + " | "
        + " | ".join(f"{k.value.lower()} rate [95% CI]" for k in RATES)
        + " |"
    )
    lines = [
        f"# A/B readout ({source})",
        "",
        "Responses (attribution tokens) with at least one recorded event; a rate is the share of them with at "
        "least one event of that kind (Wilson interval).",
        "",
        head,
        "|" + "---|" * (2 + len(STAGES) + len(RATES)),
    ]
    for a in arms:
        rates = " | ".join(f"{_pct(r.rate)} [{_pct(r.low)}, {_pct(r.high)}]" for r in a.rates.values())
        lines.append(
            f"| {a.variant} | {a.responses} | " + " | ".join(str(a.events[k.value]) for k in STAGES) + f" | {rates} |"
        )
    if diffs:
        lines += ["", "| arm - control | stage | difference [95% CI] |", "|---|---|---|"]
        lines += [
            f"| {d.variant} - {d.control} | {d.stage.lower()} | {100 * d.diff:+.1f} pts "
            f"[{100 * d.low:+.1f}, {100 * d.high:+.1f}] |"
            for d in diffs
        ]
    return "\n".join(lines) + "\n"


def plot(arms: Sequence[Arm], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(arms), 1)
    for i, a in enumerate(arms):
        xs = [j + i * width for j in range(len(RATES))]
        r = [a.rates[k.value] for k in RATES]
        ax.bar(
            xs,
            [100 * x.rate for x in r],
            width,
            label=f"{a.variant} (n={a.responses})",
            yerr=[[100 * (x.rate - x.low) for x in r], [100 * (x.high - x.rate) for x in r]],
            capsize=4,
        )
    ax.set_xticks([j + width * (len(arms) - 1) / 2 for j in range(len(RATES))], [k.value.lower() for k in RATES])
    ax.set_ylabel("% of responses (95% CI)")
    ax.set_title("A/B readout: responses reaching each stage")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    from libs.events import describe, open_event_store

    parser = argparse.ArgumentParser(prog="python -m tools.ab_report", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPORTS_DIR, help="where ab.md, ab.json, ab.png go")
    args = parser.parse_args(argv)
    settings, root = EventStoreSettings(), artifacts_dir()
    store, source = open_event_store(settings, root), describe(settings, root)
    try:
        events = store.read_attributed()
    finally:
        store.close()
    order = [name for name, _ in Variants.parse(ExperimentSettings().variants).arms]
    arms, diffs = readout(events, order)
    text = markdown(arms, diffs, source)
    shelves = {shelf: readout(group, order) for shelf, group in by_shelf(events).items()}
    for shelf, (shelf_arms, shelf_diffs) in shelves.items():
        text += "\n" + markdown(shelf_arms, shelf_diffs, f"shelf {shelf}").replace("# A/B readout", "## A/B readout", 1)
    shown_order = [name for name, _ in ExplanationArms.parse(ExperimentSettings().explanation_arms).arms]
    explained = readout(by_explanation_arm(events), shown_order)
    if explained[0]:
        text += "\n" + markdown(*explained, "explanation arms, explained responses only").replace(
            "# A/B readout", "## A/B readout", 1
        )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ab.md").write_text(text)
    (args.out / "ab.json").write_text(
        json.dumps(
            {
                "source": source,
                "arms": [asdict(a) for a in arms],
                "differences": [asdict(d) for d in diffs],
                "shelves": {
                    shelf: {"arms": [asdict(a) for a in a_], "differences": [asdict(d) for d in d_]}
                    for shelf, (a_, d_) in shelves.items()
                },
                "explanation_arms": {
                    "arms": [asdict(a) for a in explained[0]],
                    "differences": [asdict(d) for d in explained[1]],
                },
            },
            indent=2,
        )
        + "\n"
    )
    if arms:
        plot(arms, args.out / "ab.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
