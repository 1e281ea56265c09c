# syntax=docker/dockerfile:1
# The speech (faster-whisper) and pose (MediaPipe) engine nodes: `megacity engine speech`
# and `megacity engine pose`. CPU by default; ACCELERATOR=cuda adds the CUDA 12 cuBLAS and
# cuDNN 9 libraries that CTranslate2 (faster-whisper) loads for --device cuda:
#
#   docker build -f deploy/docker/speech-pose.Dockerfile -t megacity-speech-pose .
#   docker build -f deploy/docker/speech-pose.Dockerfile --build-arg ACCELERATOR=cuda \
#     -t megacity-speech-pose-cuda .
#
# The host's NVIDIA driver comes in through the container runtime (the GPU Operator or
# nvidia-container-toolkit); nothing of the driver is in the image. MediaPipe's Python
# pose landmarker runs on the CPU on Linux, so a pose node needs no GPU.
# Models are not baked in: mount them (MEGACITY_MODELS_DIR, HF_HOME) or let the node
# download them on first start where a hub is reachable.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG ACCELERATOR=cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY megacity ./megacity
# MediaPipe goes in with --no-deps (its own requirements pull the GUI OpenCV, which
# would replace the headless one the project lists); its runtime needs are project deps.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN pip install --no-cache-dir --no-compile . \
    && pip install --no-cache-dir --no-compile --no-deps 'mediapipe==1.2.3' \
    && if [ "$ACCELERATOR" = "cuda" ]; then \
         pip install --no-cache-dir --no-compile 'nvidia-cublas-cu12==12.8.4.1' 'nvidia-cudnn-cu12==9.10.2.21'; \
       elif [ "$ACCELERATOR" != "cpu" ]; then \
         echo "ACCELERATOR must be cpu or cuda, not $ACCELERATOR" >&2; exit 1; \
       fi \
    && python -m compileall -q -j 0 /opt/venv/lib

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 megacity \
    && useradd --system --uid 10001 --gid megacity --no-create-home --home-dir /tmp megacity \
    && install -d -o 10001 -g 10001 -m 0750 /models
COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /usr/local/lib/megacity/healthcheck.py
# CTranslate2 finds cuBLAS/cuDNN through the loader path; the folders exist only in the
# cuda build and are ignored otherwise.
ENV PATH=/opt/venv/bin:$PATH \
    LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    NUMBA_CACHE_DIR=/tmp/numba \
    MPLCONFIGDIR=/tmp/matplotlib \
    HF_HOME=/models/huggingface \
    MEGACITY_MODELS_DIR=/models
VOLUME ["/models"]
USER 10001:10001
EXPOSE 8101 8102
# Healthy once the model is loaded (/health is 503 until then): give it time.
HEALTHCHECK --interval=15s --timeout=3s --start-period=300s --retries=3 \
    CMD ["python", "/usr/local/lib/megacity/healthcheck.py"]
ENTRYPOINT ["megacity", "engine"]
CMD ["speech", "--host", "0.0.0.0", "--port", "8101"]
