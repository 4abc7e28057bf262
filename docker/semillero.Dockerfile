# syntax=docker/dockerfile:1
# semillero's main image: the harness and every study on CUDA. Build and run it through make:
#   make docker-build            # this image and the Axolotl one, labelled with commit + lock hash
#   make docker-sweep EXP=iberotales_grpo
#   make docker-smoke
# Every Python package comes from requirements/cuda.txt (hash-checked; `make lock` writes it).
# PyPI's torch 2.13.0 wheel is built for CUDA 13.0, so the base is CUDA 13.0 with nvcc, which
# flash-attn and DeepSpeed's JIT ops need. The digest pins it; re-resolve it with
# `docker buildx imagetools inspect nvidia/cuda:13.0.2-cudnn-devel-ubuntu24.04`.
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-devel-ubuntu24.04@sha256:e071e85c52ad91fc9ea24158ff5330876b2d1a5c4ac83ccc6066976835873c01
FROM ${CUDA_IMAGE}

# Set by `make docker-build` (docker/run.py); LOCK_SHA256 is checked against the lock below.
ARG GIT_COMMIT=unknown
ARG LOCK_SHA256=
ARG AXOLOTL_LOCK_SHA256=
ARG IMAGE=semillero:dev
ARG FLASH_ATTN=1
ARG MAX_JOBS=8
ARG PYTHON_VERSION=3.11.7

LABEL org.opencontainers.image.title="semillero" \
      org.opencontainers.image.description="Fine-tuning harness for small Spanish language models (CUDA)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      io.semillero.lock="requirements/cuda.txt" \
      io.semillero.lock.sha256="${LOCK_SHA256}" \
      io.semillero.axolotl-lock="requirements/axolotl-cuda.txt" \
      io.semillero.axolotl-lock.sha256="${AXOLOTL_LOCK_SHA256}"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

# git: the run record's commit when a checkout is mounted; python3-venv: only to bootstrap uv.
# The apt packages are not version-pinned (.hadolint.yaml says why); the Python stack is.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

# uv (requirements/tools.txt, hash-checked) installs the same CPython 3.11 as CI's, and the
# venv every tool runs in.
COPY requirements/tools.txt /tmp/requirements/tools.txt
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements/tools.txt \
    && /opt/uv/bin/uv python install "${PYTHON_VERSION}" \
    && /opt/uv/bin/uv venv --python "${PYTHON_VERSION}" /opt/venv
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/opt/uv/bin:${PATH}

# The stack. The label above may only name the lock that is installed here.
COPY requirements/cuda.txt requirements/flash-attn.txt /tmp/requirements/
RUN echo "${LOCK_SHA256:?pass --build-arg LOCK_SHA256=<sha256 of requirements/cuda.txt> (make docker-build does)}  /tmp/requirements/cuda.txt" \
        | sha256sum --check --strict \
    && uv pip install --require-hashes -r /tmp/requirements/cuda.txt

# flash-attn builds against the installed torch and nvcc (20-60 min with MAX_JOBS=8).
RUN if [ "${FLASH_ATTN}" = 1 ]; then \
        MAX_JOBS="${MAX_JOBS}" uv pip install --no-build-isolation --no-deps --require-hashes \
            -r /tmp/requirements/flash-attn.txt \
        || { echo "flash-attn did not build against torch $(python -c 'import torch; print(torch.__version__, torch.version.cuda)'). Rebuild with FLASH_ATTN=0 (make docker-build FLASH_ATTN=0): models then use PyTorch's SDPA attention." >&2; exit 1; }; \
    fi

# Axolotl's own venv, beside ours (its pins conflict with hydra-core's), so that method=axolotl
# studies run in this image too: the harness calls `axolotl train` there.
COPY requirements/axolotl-cuda.txt /tmp/requirements/
RUN echo "${AXOLOTL_LOCK_SHA256:?pass --build-arg AXOLOTL_LOCK_SHA256=<sha256 of requirements/axolotl-cuda.txt> (make docker-build does)}  /tmp/requirements/axolotl-cuda.txt" \
        | sha256sum --check --strict \
    && uv venv --python "${PYTHON_VERSION}" /opt/axolotl \
    && uv pip install --python /opt/axolotl/bin/python --require-hashes -r /tmp/requirements/axolotl-cuda.txt

# Non-root (uid 1000, `semillero`). Ubuntu's images ship a user 1000 (`ubuntu`); ours takes its place. /cache and
# outputs/ are writable by any uid, since `make docker-*` runs as the calling user.
RUN userdel --remove ubuntu 2>/dev/null; \
    useradd --create-home --uid 1000 --shell /bin/bash semillero \
    && mkdir -p /cache /workspace/outputs \
    && chmod 1777 /cache /workspace/outputs

WORKDIR /workspace
COPY --chown=semillero:semillero pyproject.toml README.md Makefile ./
COPY --chown=semillero:semillero src ./src
COPY --chown=semillero:semillero conf ./conf
COPY --chown=semillero:semillero experiments ./experiments
COPY --chown=semillero:semillero tests ./tests
RUN uv pip install --no-deps --no-build-isolation -e . \
    && printf '{"image": "%s", "commit": "%s", "lock": "requirements/cuda.txt", "lock_sha256": "%s", "cuda_base": "%s"}\n' \
        "${IMAGE}" "${GIT_COMMIT}" "${LOCK_SHA256}" "${CUDA_VERSION:-unknown}" > /etc/semillero-image.json

# Caches and runs live on the /cache volume and the mounted outputs/; secrets (WANDB_API_KEY,
# HF_TOKEN) are passed at run time (`-e NAME`), never baked in.
ENV SEMILLERO_IMAGE_INFO=/etc/semillero-image.json \
    SEMILLERO_AXOLOTL_ENV=/opt/axolotl \
    AXOLOTL_DO_NOT_TRACK=1 \
    HOME=/tmp \
    HF_HOME=/cache/huggingface \
    SEMILLERO_CACHE_DIR=/cache/semillero \
    TRITON_CACHE_DIR=/cache/triton \
    TORCHINDUCTOR_CACHE_DIR=/cache/inductor \
    MPLCONFIGDIR=/tmp/matplotlib
VOLUME ["/cache"]
USER 1000:1000
CMD ["semillero", "--help"]
