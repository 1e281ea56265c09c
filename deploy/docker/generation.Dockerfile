# syntax=docker/dockerfile:1
# The generation engine nodes: `megacity engine image` (diffusers text-to-image) and
# `megacity engine tts` (VITS / MMS-TTS, espeak-ng as the CPU fallback), with torch built
# for CUDA:
#
#   docker build -f deploy/docker/generation.Dockerfile -t megacity-generation .
#
# torch comes from PyPI, whose Linux x86_64 wheels bundle their CUDA runtime (the host's
# NVIDIA driver comes in through the container runtime). For another CUDA build, name its
# wheel index: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
# Models are not baked in: mount them (HF_HOME) or let the node download them.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://pypi.org/simple
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY megacity ./megacity
# torch first, so the project's `torch>=…` is already met by this exact build;
# invisible-watermark goes in with --no-deps (it asks for the GUI OpenCV).
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN pip install --no-cache-dir --no-compile --index-url "$TORCH_INDEX_URL" "torch==${TORCH_VERSION}" \
    && pip install --no-cache-dir --no-compile "./[generation]" \
    && pip install --no-cache-dir --no-compile --no-deps 'invisible-watermark==0.2.0' \
    && python -m compileall -q -j 0 /opt/venv/lib

FROM ${PYTHON_IMAGE} AS runtime
# espeak-ng: the TTS fallback voice when a VITS model is missing or fails to load.
# Debian's package versions move with security updates, so they are not pinned here
# (the base image's tag pins the release); see deploy/docker/.hadolint.yaml.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 megacity \
    && useradd --system --uid 10001 --gid megacity --no-create-home --home-dir /tmp megacity \
    && install -d -o 10001 -g 10001 -m 0750 /models
COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /usr/local/lib/megacity/healthcheck.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    NUMBA_CACHE_DIR=/tmp/numba \
    MPLCONFIGDIR=/tmp/matplotlib \
    HF_HOME=/models/huggingface \
    MEGACITY_MODELS_DIR=/models
VOLUME ["/models"]
USER 10001:10001
EXPOSE 8103 8104
# Healthy once the model is loaded (/health is 503 until then): diffusers models take time.
HEALTHCHECK --interval=15s --timeout=3s --start-period=600s --retries=3 \
    CMD ["python", "/usr/local/lib/megacity/healthcheck.py"]
ENTRYPOINT ["megacity", "engine"]
CMD ["image", "--host", "0.0.0.0", "--port", "8103"]
