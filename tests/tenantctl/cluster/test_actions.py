"""The node's start-up as an ordered list of actions (tenantctl/cluster/actions.py), without running one
that needs root: their order, and how they are run."""

from __future__ import annotations

from tenantctl.cluster.actions import Action, node_actions, run_actions


def test_the_node_starts_in_this_order():
    assert [action.name for action in node_actions()] == [
        "host_checked",
        "host_snapshot",
        "prepared",
        "kernel_settings",
        "egress_guard",
        "service_route",
        "containerd_and_images",
        "node_ready",
        "cluster_objects",
        "proxy_netpol_scheduler",
        "coredns_ready",
    ]
    assert all(action.title for action in node_actions())


class Recorded(Action):
    def __init__(self, name: str, events: list[str]):
        self.name, self.title, self.events = name, f"doing {name}", events

    def begin(self, context) -> None:
        self.events.append(f"begin {self.name}")

    def execute(self, context) -> None:
        self.events.append(f"execute {self.name}")


class Context:
    def __init__(self):
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def test_actions_run_in_order_named_in_the_progress_and_timed():
    events: list[str] = []
    context, timings = Context(), {}
    run_actions([Recorded("first", events), Recorded("second", events)], context, timings)
    assert events == ["begin first", "begin second", "execute first", "execute second"]
    assert context.lines == ["[1/2] first: doing first", "[2/2] second: doing second"]
    assert list(timings) == ["first", "second"] and timings["first"] <= timings["second"]
