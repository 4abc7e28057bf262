# syntax=docker/dockerfile:1
# The Axolotl image: Axolotl's own pinned stack, which cannot share a venv with the harness
# (its antlr4 pin conflicts with hydra-core's). The harness renders Axolotl's YAML and calls
# `axolotl train` in this environment. Build it with `make docker-build` (with the main image).
# Every Python package comes from requirements/axolotl-cuda.txt (hash-checked; `make lock`).
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-devel-ubuntu24.04@sha256:e071e85c52ad91fc9ea24158ff5330876b2d1a5c4ac83ccc6066976835873c01
FROM ${CUDA_IMAGE}

ARG GIT_COMMIT=unknown
ARG LOCK_SHA256=
ARG IMAGE=semillero-axolotl:dev
ARG PYTHON_VERSION=3.11.7

LABEL org.opencontainers.image.title="semillero-axolotl" \
      org.opencontainers.image.description="Axolotl's stack for semillero's Axolotl studies (CUDA)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      io.semillero.lock="requirements/axolotl-cuda.txt" \
      io.semillero.lock.sha256="${LOCK_SHA256}"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    AXOLOTL_DO_NOT_TRACK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

COPY requirements/tools.txt /tmp/requirements/tools.txt
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements/tools.txt \
    && /opt/uv/bin/uv python install "${PYTHON_VERSION}" \
    && /opt/uv/bin/uv venv --python "${PYTHON_VERSION}" /opt/venv
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/opt/uv/bin:${PATH}

COPY requirements/axolotl-cuda.txt /tmp/requirements/
RUN echo "${LOCK_SHA256:?pass --build-arg LOCK_SHA256=<sha256 of requirements/axolotl-cuda.txt> (make docker-build does)}  /tmp/requirements/axolotl-cuda.txt" \
        | sha256sum --check --strict \
    && uv pip install --require-hashes -r /tmp/requirements/axolotl-cuda.txt \
    && printf '{"image": "%s", "commit": "%s", "lock": "requirements/axolotl-cuda.txt", "lock_sha256": "%s", "cuda_base": "%s"}\n' \
        "${IMAGE}" "${GIT_COMMIT}" "${LOCK_SHA256}" "${CUDA_VERSION:-unknown}" > /etc/semillero-image.json

RUN userdel --remove ubuntu 2>/dev/null; \
    useradd --create-home --uid 1000 --shell /bin/bash semillero \
    && mkdir -p /cache /workspace \
    && chmod 1777 /cache /workspace

WORKDIR /workspace
ENV SEMILLERO_IMAGE_INFO=/etc/semillero-image.json \
    HOME=/tmp \
    HF_HOME=/cache/huggingface \
    TRITON_CACHE_DIR=/cache/triton
VOLUME ["/cache"]
USER 1000:1000
ENTRYPOINT ["axolotl"]
CMD ["--help"]
