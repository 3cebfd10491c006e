"""Pool members from a Service's EndpointSlices: which endpoints count, and members changing under a pool.

The end-to-end proof (the gateway balancing over real model Pods, one killed during traffic) is in
tests/cluster/. Here: the decoding of real EndpointSlice objects and a real pool's bookkeeping."""

from __future__ import annotations

from kubernetes import client

from llm_common.metrics_registry import MetricsRegistry
from llm_gateway.backends import AiohttpClient, BackendPool, PoolMember
from llm_gateway.backends.outlier import OutlierPolicy
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.pool_discovery import ready_member_urls


def endpoint(address: str, ready: bool | None) -> client.V1Endpoint:
    conditions = None if ready is None else client.V1EndpointConditions(ready=ready)
    return client.V1Endpoint(addresses=[address], conditions=conditions)


def endpoint_slice(endpoints, port_name="http", port=8000) -> client.V1EndpointSlice:
    return client.V1EndpointSlice(
        address_type="IPv4", endpoints=endpoints, ports=[client.DiscoveryV1EndpointPort(name=port_name, port=port)]
    )


def test_only_ready_endpoints_on_the_named_port_are_members():
    slices = [
        endpoint_slice([endpoint("10.244.0.7", True), endpoint("10.244.0.8", False), endpoint("10.244.0.9", None)]),
        endpoint_slice([endpoint("10.244.0.10", True)], port_name="metrics", port=9100),
        endpoint_slice(None),  # a Service with no Pods yet
    ]
    assert ready_member_urls(slices, "http") == ["http://10.244.0.7:8000", "http://10.244.0.9:8000"]


def member(url: str) -> PoolMember:
    return PoolMember(url, AiohttpClient(url + "/v1", "x", connect_timeout=0.2, read_timeout=1))


def test_members_that_stay_keep_their_state_when_the_pods_change():
    pool = BackendPool(
        "smollm2-135m-instruct",  # a self-hosted model's pool is named after it
        [],
        GatewayMetrics(MetricsRegistry(None)),
        outlier=OutlierPolicy(eject_seconds=10),
        health_path="/health",
    )
    assert not pool.is_available()  # no Pod ready yet: requests get a clear 503, readiness is not affected

    pool.set_member_urls(["http://10.0.0.1:8000", "http://10.0.0.2:8000"], member)
    first, second = pool.members
    first.outstanding, second.ejected_until = 3, 1e12  # busy; ejected

    pool.set_member_urls(["http://10.0.0.2:8000", "http://10.0.0.3:8000"], member)  # 10.0.0.1 went away
    assert [m.url for m in pool.members] == ["http://10.0.0.2:8000", "http://10.0.0.3:8000"]
    assert pool.members[0] is second and second.ejected_until == 1e12
    assert pool._members_to_try() == [pool.members[1]]
