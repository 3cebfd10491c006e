# The CPU model server: llama-cpp-python's OpenAI-compatible server plus /metrics and /health
# (tenantctl/local/model_server.py), the stand-in for the vLLM pool where there is no GPU. It serves the
# catalogue's models of engine `cpu`, each started as `--model /models/<source>` with the entry's source,
# from the built-in models of the model cache (tenantctl/local/model_cache.py), under their source names:
#   /models/SmolLM2-135M-Instruct.Q4_1.gguf  SmolLM2-135M-Instruct, chat (the default command)
#   /models/gemma-3-270m-q4_k_m.gguf         Gemma 3 270M, chat (no chat template in the file: the server
#                                            picks Gemma's format by its architecture)
#   /models/all-MiniLM-L6-v2.f32.gguf        all-MiniLM-L6-v2, mean pooling, 384 dimensions
#                                            (run with --embedding true --n_ctx 512 --n_batch 512)
# and /licenses/gemma-3-270m/: the Gemma Terms of Use and the Notice file they require of a distribution.
# Built by `tenantctl images build`, which puts the llama-cpp-python wheel scripts/setup compiled
# into wheels/ and the model files into models/; everything else comes from requirements-model-server.lock.
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
COPY licenses/ /licenses/
COPY llm_common /srv/model-server/llm_common
COPY tenantctl/__init__.py /srv/model-server/tenantctl/
COPY tenantctl/local/__init__.py tenantctl/local/model_server.py /srv/model-server/tenantctl/local/
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin llm
USER 10001
EXPOSE 8000
ENTRYPOINT ["python3", "-m", "tenantctl.local.model_server"]
CMD ["--model", "/models/SmolLM2-135M-Instruct.Q4_1.gguf", "--model_alias", "smollm2-135m-instruct", \
     "--host", "0.0.0.0", "--port", "8000", "--interrupt_requests", "false", "--n_ctx", "2048"]
