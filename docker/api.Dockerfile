# The API image: FastAPI + the built frontend on slim Python. No torch, no CUDA.
# Build context: the repository root (see docker-compose.yml).
# The base images are build args (defaults: the official images), so a machine with its own
# mirror, or the tests' locally made Debian base (make test-compose), can swap them:
#   docker compose build --build-arg PYTHON_IMAGE=... --build-arg NODE_IMAGE=... api
ARG NODE_IMAGE=node:22-bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- stage 1: the frontend (Vite) ---------------------------------------------------------
FROM ${NODE_IMAGE} AS frontend
WORKDIR /src/frontend
# package*.json first, so the npm layer is cached until the dependencies change.
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# --- the sources: a scratch stage, so its layers hold only these files and the image below
# gets them in one layer (a change of the code rebuilds only the last two layers) ----------
FROM scratch AS sources
COPY pyproject.toml README.md /src/app/
COPY backend/ /src/app/backend/
COPY worker/ /src/app/worker/
COPY cpt_contract/ /src/app/cpt_contract/
COPY cpt_cli/ /src/app/cpt_cli/
COPY docker/check_image.py docker/healthcheck.py /src/usr/local/lib/cpt-panel/

# --- stage 2: the API -----------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS api
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The same uid/gid as the worker image: both write the shared /data volume.
ARG CPT_UID=1000
ARG CPT_GID=1000
# (Ubuntu 24.04 based images already have "ubuntu" as uid/gid 1000: make room first.)
RUN if getent passwd "${CPT_UID}" >/dev/null; then userdel "$(getent passwd "${CPT_UID}" | cut -d: -f1)"; fi \
 && if getent group "${CPT_GID}" >/dev/null; then groupdel "$(getent group "${CPT_GID}" | cut -d: -f1)"; fi \
 && groupadd --gid "${CPT_GID}" cpt \
 && useradd --uid "${CPT_UID}" --gid cpt --create-home --shell /usr/sbin/nologin cpt

WORKDIR /app
# Every Python pin comes from the lock (constraints). Kept: plain `name==version` lines;
# dropped: the editable project itself and the torch family (never installed here).
COPY requirements.lock /tmp/requirements.lock
RUN grep -E '^[A-Za-z0-9][A-Za-z0-9._-]*==' /tmp/requirements.lock \
      | grep -viE '^(cpt-panel|torch|triton|nvidia-)' > /tmp/constraints.txt
COPY pyproject.toml ./
# The dependencies first, in a layer of their own that only pyproject.toml and the lock key:
# empty package dirs and README stand in for the sources (the project itself is uninstalled).
RUN mkdir -p backend worker cpt_contract cpt_cli && touch README.md \
 && pip install --no-cache-dir -c /tmp/constraints.txt ".[api]" \
 && pip uninstall -y -q cpt-panel && rm -r README.md backend worker cpt_contract cpt_cli
# /src/ is laid out as the image's root: /app and /usr/local/lib/cpt-panel.
COPY --from=sources /src/ /
COPY --from=frontend /src/frontend/dist /app/frontend/dist
# The check fails the build when an installed package differs from the lock or torch got in.
# /data belongs to cpt, so a fresh named volume mounted there is writable by cpt.
RUN pip install --no-cache-dir --no-deps -c /tmp/constraints.txt ".[api]" \
 && python /usr/local/lib/cpt-panel/check_image.py --lock /tmp/requirements.lock \
      --extras api --no-torch \
 && mkdir -p /data && chown cpt:cpt /data
USER ${CPT_UID}:${CPT_GID}
ENV CPT_DATA_DIR=/data \
    CPT_HOST=0.0.0.0 \
    CPT_PORT=8000 \
    CPT_FRONTEND_DIST=/app/frontend/dist
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "/usr/local/lib/cpt-panel/healthcheck.py", "api"]
# `serve` applies the database migrations before it listens (the app's lifespan).
ENTRYPOINT ["cpt-panel"]
CMD ["serve"]
