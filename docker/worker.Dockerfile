# The GPU worker image: the official PyTorch CUDA *devel* image (nvcc + gcc, so DeepSpeed can
# compile its CUDA ops), whose torch version equals the lock's torch pin
# (tests/test_dockerfiles.py checks the tag against requirements.lock).
# Build context: the repository root (see docker-compose.yml).
# The base image is a build arg (default: the official image). Any base whose Python has the
# lock's torch works; TORCH_BUILD says which build it must be (cuda on a GPU box; cpu is what
# `make test-compose` builds on, a Debian base with the CPU wheel) and DS_ACCELERATOR which
# accelerator DeepSpeed's installer assumes.
ARG TORCH_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-devel
# --- the sources: a scratch stage, so its layers hold only these files and the image below
# gets them in one layer (a change of the code rebuilds only the last two layers) ----------
FROM scratch AS sources
COPY pyproject.toml README.md /src/app/
COPY backend/ /src/app/backend/
COPY worker/ /src/app/worker/
COPY cpt_contract/ /src/app/cpt_contract/
COPY cpt_cli/ /src/app/cpt_cli/
COPY docker/check_image.py docker/healthcheck.py /src/usr/local/lib/cpt-panel/

# --- the worker ---------------------------------------------------------------------------
FROM ${TORCH_IMAGE} AS worker
ARG TORCH_BUILD=cuda
ARG DS_ACCELERATOR=cuda
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# The same uid/gid as the API image: both write the shared /data volume.
ARG CPT_UID=1000
ARG CPT_GID=1000
# A venv on top of the base image's Python that *sees* its CUDA torch
# (--system-site-packages): pip never reinstalls torch (no CPU wheel sneaking in), and packages
# the lock pins differently from the base image land in the venv instead of overwriting the
# base image's conda-managed files.
ENV VIRTUAL_ENV=/opt/venv
# (Ubuntu 24.04 based images already have "ubuntu" as uid/gid 1000: make room first.)
RUN if getent passwd "${CPT_UID}" >/dev/null; then userdel "$(getent passwd "${CPT_UID}" | cut -d: -f1)"; fi \
 && if getent group "${CPT_GID}" >/dev/null; then groupdel "$(getent group "${CPT_GID}" | cut -d: -f1)"; fi \
 && groupadd --gid "${CPT_GID}" cpt \
 && useradd --uid "${CPT_UID}" --gid cpt --create-home --shell /usr/sbin/nologin cpt \
 && python -m venv --system-site-packages "${VIRTUAL_ENV}"
ENV PATH=/opt/venv/bin:${PATH}

# Every Python pin comes from the lock (constraints), minus the torch family (torch, triton,
# nvidia-*: the base image's CUDA build is the one we want; the lock was frozen from a CPU venv) and the
# editable project itself.
COPY requirements.lock /tmp/requirements.lock
RUN grep -E '^[A-Za-z0-9][A-Za-z0-9._-]*==' /tmp/requirements.lock \
      | grep -viE '^(cpt-panel|torch|triton|nvidia-)' > /tmp/constraints.txt

# DeepSpeed first, on its own: it is an sdist whose setup.py imports torch, so it needs
# --no-build-isolation (otherwise it records torch "0.0" or pulls a second torch into the
# build env).
# Ops: DS_BUILD_OPS=0 installs no precompiled op; DeepSpeed JIT-compiles an op (FusedAdam,
# CPUAdam for the *_offload presets) with the devel image's nvcc and ninja the first time a run
# needs it, for exactly the GPUs of the box, into TORCH_EXTENSIONS_DIR on the cache volume
# (once per box, about a minute). Prebuilding at `docker build` time would run with no GPU
# visible, so it would have to guess TORCH_CUDA_ARCH_LIST and force DS_ACCELERATOR=cuda.
# To prebuild anyway: --build-arg DS_BUILD_FUSED_ADAM=1 --build-arg DS_BUILD_CPU_ADAM=1
# (and set TORCH_CUDA_ARCH_LIST to your GPUs, e.g. "9.0" for H100).
ARG DS_BUILD_FUSED_ADAM=0
ARG DS_BUILD_CPU_ADAM=0
ARG TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0"
# Its build-time imports first (the same list as the Makefile's), pinned as in the lock:
RUN pip install --no-cache-dir -c /tmp/constraints.txt packaging==26.3 ninja==1.13.2 \
      hjson==3.1.0 py-cpuinfo==9.0.0 psutil==7.2.2 pydantic==2.14.4 msgpack==1.2.4 numpy==2.4.6 \
 && DS_BUILD_OPS=0 DS_ACCELERATOR="${DS_ACCELERATOR}" \
    DS_BUILD_FUSED_ADAM="${DS_BUILD_FUSED_ADAM}" DS_BUILD_CPU_ADAM="${DS_BUILD_CPU_ADAM}" \
    TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST}" \
    pip install --no-cache-dir --no-build-isolation -c /tmp/constraints.txt deepspeed==0.19.8

WORKDIR /app
COPY pyproject.toml ./
# The dependencies first, in a layer of their own that only pyproject.toml and the lock key:
# empty package dirs and README stand in for the sources (the project itself is uninstalled).
RUN mkdir -p backend worker cpt_contract cpt_cli && touch README.md \
 && pip install --no-cache-dir -c /tmp/constraints.txt ".[api,train]" \
 && pip uninstall -y -q cpt-panel && rm -r README.md backend worker cpt_contract cpt_cli
# /src/ is laid out as the image's root: /app and /usr/local/lib/cpt-panel.
COPY --from=sources /src/ /
# The check fails the build (not the first run) when an installed package differs from the lock,
# or when the base image's torch is not the locked release or not the TORCH_BUILD build.
# /data (shared with the API) and the cache dir belong to cpt, so fresh named volumes mounted
# there are writable by cpt. HF_HOME, the JIT-compiled DeepSpeed ops and Triton's kernels all
# live under ~/.cache (one volume in docker-compose.yml).
RUN pip install --no-cache-dir --no-deps -c /tmp/constraints.txt ".[api,train]" \
 && python /usr/local/lib/cpt-panel/check_image.py --lock /tmp/requirements.lock \
      --extras api,train --torch-build "${TORCH_BUILD}" \
 && python -c "import deepspeed, torch; print('torch', torch.__version__, 'deepspeed', deepspeed.__version__)" \
 && mkdir -p /data /home/cpt/.cache/huggingface /home/cpt/.cache/torch_extensions \
 && chown -R cpt:cpt /data /home/cpt/.cache
ENV HOME=/home/cpt \
    HF_HOME=/home/cpt/.cache/huggingface \
    TORCH_EXTENSIONS_DIR=/home/cpt/.cache/torch_extensions \
    TRITON_CACHE_DIR=/home/cpt/.cache/triton \
    CPT_DATA_DIR=/data
USER ${CPT_UID}:${CPT_GID}
VOLUME ["/data", "/home/cpt/.cache"]
HEALTHCHECK --interval=30s --timeout=15s --start-period=120s --retries=3 \
  CMD ["python", "/usr/local/lib/cpt-panel/healthcheck.py", "worker"]
# The same entry point as outside Docker: `cpt-panel worker`.
ENTRYPOINT ["cpt-panel"]
CMD ["worker"]
