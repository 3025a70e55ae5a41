# syntax=docker/dockerfile:1
#
# gitflags: flagserve serving the flags of this repository, compiled at image build time.
#
#   docker build -t gitflags .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp gitflags
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp \
#       -v "$PWD/build:/srv/flags/build:ro" gitflags      # serve a build made elsewhere
#   docker run --rm -v "$PWD:/repo" -w /repo gitflags flagc check flags
#
# The build context must include .git (see .dockerignore) for the audit log to be complete,
# with the whole history (a shallow clone fails the build and says so). Without .git the
# image still builds: flagc notes that it is outside git, writes an empty audit log and
# stamps the build with a hash of its content instead of a commit.
#
# scripts/dockerfile_steps.py runs the RUN, CMD and HEALTHCHECK steps below on the host, in
# a fresh virtual environment, and tests/delivery/test_container.py runs it: a step that
# breaks fails the tests rather than someone's `docker build`.
#
# The base image is pinned to its full version tag. Pin its digest too where the registry
# can be reached (`docker buildx imagetools inspect python:3.11.9-slim-bookworm`), as
# FROM python:3.11.9-slim-bookworm@sha256:<digest>; it could not be looked up offline here.

FROM python:3.11.9-slim-bookworm AS build

# git: flagc reads the history of flags/ for the audit log and the revision.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git=1:2.39.* \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/gitflags/bin:$PATH

# The package first, then the flags and history: a commit that changes only flags/ reuses
# the installed layer. What was tested is what is installed: the runtime lock, every package
# pinned with its hashes, then gitflags alone (no build isolation, which would fetch an
# unpinned setuptools: the lock has one).
WORKDIR /src
COPY requirements/runtime.lock requirements/
RUN python -m venv /opt/gitflags \
    && pip install --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY core/ core/
COPY compiler/ compiler/
COPY server/ server/
COPY schemas/ schemas/
RUN pip install --no-deps --no-build-isolation .

COPY . .
RUN flagc build flags -o /build


FROM python:3.11.9-slim-bookworm AS runtime

# git stays: the same image compiles flags (`flagc check`, `flagc build`), such as the
# builder container of deploy/kubernetes/, whose checkout belongs to another user.
# graphviz: the dashboard draws the dependency graph with its `dot`.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git=1:2.39.* graphviz=2.42.* \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory '*' \
    && groupadd --system --gid 10001 flagserve \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin flagserve

# Read-only friendly: nothing is written at run time but temporary files (gunicorn's worker
# heartbeats, the Prometheus multiprocess directory of server/gunicorn_conf.py), all under
# TMPDIR, which a read-only container gets as a tmpfs (--read-only --tmpfs /tmp).
# FLAGSERVE_DIR is the baked build; mount another build over it, or point FLAGSERVE_DIR
# (or flagserve's OUT argument) at a mounted one, to serve builds produced elsewhere.
ENV PATH=/opt/gitflags/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    FLAGSERVE_DIR=/srv/flags/build \
    FLAGSERVE_BIND=0.0.0.0:8000

# Owned by root, so the server cannot change its own code or build.
COPY --from=build /opt/gitflags /opt/gitflags
COPY --from=build /build /srv/flags/build

WORKDIR /srv/flags
USER 10001:10001
EXPOSE 8000

# Liveness from inside, with the Python already there: no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ['FLAGSERVE_BIND'].rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

CMD ["flagserve"]
