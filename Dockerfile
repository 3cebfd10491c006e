# One image for the shared gateway and the tenant proxies (the Deployments choose the command):
#   gateway: gunicorn -c python:llm_common.gunicorn_conf 'llm_gateway:build_from_environment()'
#   proxy:   gunicorn -c python:llm_common.gunicorn_conf 'app:build_from_environment()'
# Runs as uid 10001 on a read-only root filesystem; /tmp is an emptyDir (metrics files).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/llm-tenants
COPY pyproject.toml README.md ./
COPY app ./app
COPY llm_common ./llm_common
COPY llm_gateway ./llm_gateway
COPY tenantctl ./tenantctl
RUN pip install . && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin llm

USER 10001
EXPOSE 8080
CMD ["gunicorn", "-c", "python:llm_common.gunicorn_conf", "app:build_from_environment()"]
