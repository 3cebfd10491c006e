# The CPU model server: llama-cpp-python's OpenAI-compatible server plus /metrics
# (tenantctl/local/model_server.py) with two models, the stand-in for the vLLM pool where there is no GPU:
#   /models/chat.gguf       SmolLM2-135M-Instruct (the default command)
#   /models/embedding.gguf  all-MiniLM-L6-v2, mean pooling, 384 dimensions (run with --embedding true)
# Built by `tenantctl images build`, which puts the llama-cpp-python wheel scripts/setup compiled
# into wheels/ and the models into models/; everything else comes from requirements-model-server.lock.
# `build-ca.crt`, when present, is trusted by the build stage only.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements-model-server.lock build-ca.cr[t] ./
# Exactly as locked (versions and hashes; scripts/lock), then llama-cpp-python from the wheel setup built.
RUN if [ -f build-ca.crt ]; then export PIP_CERT=/src/build-ca.crt; fi \
 && python3 -m venv /opt/model-server \
 && /opt/model-server/bin/python -m pip install --no-deps --require-hashes -r requirements-model-server.lock
COPY wheels/ ./wheels/
RUN /opt/model-server/bin/python -m pip install --no-deps --no-index wheels/llama_cpp_python-*.whl

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/model-server/bin:$PATH PYTHONPATH=/srv/model-server
COPY --from=build /opt/model-server /opt/model-server
COPY models/ /models/
COPY llm_common /srv/model-server/llm_common
COPY tenantctl/__init__.py /srv/model-server/tenantctl/
COPY tenantctl/local/__init__.py tenantctl/local/model_server.py /srv/model-server/tenantctl/local/
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin llm
USER 10001
EXPOSE 8000
ENTRYPOINT ["python3", "-m", "tenantctl.local.model_server"]
CMD ["--model", "/models/chat.gguf", "--model_alias", "smollm2-135m-instruct", "--host", "0.0.0.0", "--port", "8000", \
     "--interrupt_requests", "false", "--n_ctx", "2048"]
