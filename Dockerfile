# One image for the shared gateway and the tenant proxies (the Deployments choose the command):
#   gateway: gunicorn -c python:llm_gateway.gunicorn_conf 'llm_gateway:build_from_environment()'
#   proxy:   gunicorn -c python:llm_common.gunicorn_conf 'app:build_from_environment()'
# Runs as uid 10001 on a read-only root filesystem; /tmp is an emptyDir (metrics files).
#
#   docker build -t ghcr.io/llm-tenants/platform:0.1.0 .
#
# BASE is any Debian-like image with Python 3.11 and its venv module (the lock is for Linux x86_64 with
# glibc 2.36 or newer). `tenantctl images build`
# passes a Debian bookworm base built locally with mmdebstrap (no registry needed). Only the
# services and their run-time dependencies are installed: tenantctl and its dependencies
# (Terraform, dashboards, reports; the `cli` extra) stay out. Behind a TLS-inspecting proxy, put its CA bundle in the build context as
# `build-ca.crt`: only the build stage sees it, the final image does not contain it.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies first, exactly as locked (versions and hashes; scripts/lock): a code change does not reinstall them.
COPY requirements-runtime.lock build-ca.cr[t] ./
RUN if [ -f build-ca.crt ]; then export PIP_CERT=/src/build-ca.crt; fi \
 && python3 -m venv /opt/llm-tenants \
 && /opt/llm-tenants/bin/python -m pip install --no-deps --require-hashes -r requirements-runtime.lock
COPY pyproject.toml ./
COPY tenant_spec ./tenant_spec
COPY llm_common ./llm_common
COPY app ./app
COPY llm_gateway ./llm_gateway
COPY alert_config_sync ./alert_config_sync
# The package itself, built with the locked setuptools: nothing is resolved or downloaded here.
RUN /opt/llm-tenants/bin/python -m pip install --no-deps --no-build-isolation --no-index .

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/llm-tenants/bin:$PATH
COPY --from=build /opt/llm-tenants /opt/llm-tenants
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin llm
WORKDIR /srv/llm-tenants
USER 10001
EXPOSE 8080
CMD ["gunicorn", "-c", "python:llm_common.gunicorn_conf", "app:build_from_environment()"]
