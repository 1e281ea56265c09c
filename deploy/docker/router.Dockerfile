# syntax=docker/dockerfile:1
# The AI Router (`megacity serve`) and the job worker (`megacity worker`): one build,
# two targets. Built from the repository root (see `make images`):
#
#   docker build -f deploy/docker/router.Dockerfile --target router -t megacity-router .
#   docker build -f deploy/docker/router.Dockerfile --target worker -t megacity-worker .
#
# No torch, no CUDA: the router relays to engine nodes, and the worker's generation jobs
# call the image/TTS nodes (generation.Dockerfile) over HTTP. Runs as uid 10001 on a
# read-only root filesystem; the only writable places are /tmp and the data volume.
#
# The base is the interpreter `make test` runs on, pinned to an exact tag; pin it by
# digest in your registry: --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:…
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: the project and its dependencies in a virtual environment -----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY megacity ./megacity
# Byte-compiled here, because the root filesystem is read-only at run time.
RUN pip install --no-cache-dir --no-compile . \
    && python -m compileall -q -j 0 /opt/venv/lib

# ---- runtime: what the router and the worker share --------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 megacity \
    && useradd --system --uid 10001 --gid megacity --no-create-home --home-dir /tmp megacity \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/megacity
COPY --from=build /opt/venv /opt/venv
# The example topology and protected identities: defaults for `docker run`; the Helm
# chart mounts the release's own at the same paths.
COPY examples/topology.yaml examples/protected_identities.yaml /etc/megacity/
COPY deploy/docker/healthcheck.py /usr/local/lib/megacity/healthcheck.py
# Caches that libraries write (numba's compiled kernels, matplotlib's font list) go to
# /tmp, a tmpfs or emptyDir in production: the root filesystem stays read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    NUMBA_CACHE_DIR=/tmp/numba \
    MPLCONFIGDIR=/tmp/matplotlib \
    MEGACITY_HOST=0.0.0.0 \
    MEGACITY_PORT=8000 \
    MEGACITY_CONFIG=/etc/megacity/topology.yaml \
    MEGACITY_PROTECTED_IDENTITIES_FILE=/etc/megacity/protected_identities.yaml \
    MEGACITY_DATA_DIR=/var/lib/megacity
VOLUME ["/var/lib/megacity"]
USER 10001:10001
ENTRYPOINT ["megacity"]

# ---- router --------------------------------------------------------------------------------
FROM runtime AS router
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/lib/megacity/healthcheck.py"]
CMD ["serve"]

# ---- worker --------------------------------------------------------------------------------
# A worker serves no port: a stuck one is found by the queue (its job leases expire and
# another worker takes the jobs), not by a health check.
FROM runtime AS worker
HEALTHCHECK NONE
CMD ["worker"]
