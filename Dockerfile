# The compiler image: `docker run --rm -v "$PWD:/repo" IMAGE check flags` checks a flags
# repository without Python on the host. The serving image (multi-stage, flagserve as a
# non-root user) comes with the server; see the project's issues.
FROM python:3.11.9-slim-bookworm

# git lets flagc stamp builds with the commit they were made from.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git=1:2.39.* \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY compiler/ compiler/
COPY server/ server/
COPY schemas/ schemas/
RUN pip install --no-cache-dir . \
    && git config --system --add safe.directory '*'

WORKDIR /repo
USER 65532:65532
ENTRYPOINT ["flagc"]
CMD ["check", "flags"]
