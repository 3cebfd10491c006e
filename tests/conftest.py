"""Fixtures that start the real platform: embedded model server, gateway and tenant proxies.

Everything runs as real processes on free loopback ports, started through the
same launchers `tenantctl up` uses, and is stopped at the end of the session
(or of the module) even when tests fail.
"""

from __future__ import annotations

import pytest

from tenantctl.local import LocalPlatform, LocalSettings
from tenantctl.processes import ManagedProcess
from tests.helpers import RunningPlatform, TenantDocuments, free_port, specs_on_free_ports


@pytest.fixture(scope="session")
def platform(tmp_path_factory) -> RunningPlatform:
    """The local platform exactly as `tenantctl up` runs it, on free ports."""
    settings = LocalSettings(run_dir=tmp_path_factory.mktemp("platform"), gateway_port=free_port(),
                             model_port=free_port(), embedding_port=free_port(), embedded_model=True, workers=2)
    local = LocalPlatform(specs_on_free_ports(), settings, environ={})
    try:
        local.start()
        yield RunningPlatform(local)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def model_url(platform) -> str:
    return platform.model_url


@pytest.fixture
def documents(platform) -> TenantDocuments:
    """Add documents to the platform's tenants; every one added is deleted after the test."""
    tenant_documents = TenantDocuments(platform)
    yield tenant_documents
    tenant_documents.delete_all()


def start_process(process: ManagedProcess, timeout: float = 120) -> ManagedProcess:
    process.start()
    try:
        process.wait_healthy(timeout)
    except BaseException:
        process.stop()
        raise
    return process


@pytest.fixture
def process_group():
    """Start ad-hoc processes in a test; all are stopped afterwards."""
    started: list[ManagedProcess] = []

    def start(process: ManagedProcess, timeout: float = 120) -> ManagedProcess:
        started.append(process)
        return start_process(process, timeout)

    yield start
    for process in reversed(started):
        process.stop()
