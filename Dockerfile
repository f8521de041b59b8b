# One image for the server processes (collector, dispatcher, migrate).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agent agent
COPY collector collector
COPY dispatcher dispatcher
COPY schemas schemas
COPY hourglass hourglass
RUN pip install --no-cache-dir '.[server]'
USER nobody
ENTRYPOINT ["hourglass"]
