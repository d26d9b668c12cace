# One image, three uses, each choosing its own entry point:
#   ingest Lambdas   python -m awslambdaric ingest.aws_lambda.{planner,worker}_handler  (infra stack)
#   dbt on Fargate   sh /app/scheduled_dbt.sh --target athena (freshness, then build) (task definition)
#   names on Fargate b2p dimensions --lake s3://… --secret-id …                        (task definition)
# Build for the architecture the stack declares (X86_64):
#   docker build --platform linux/amd64 -t bones2peaches:latest .

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ingest ./ingest
# A virtualenv copied whole into the runtime stage: no compilers or pip caches in the final image.
RUN python -m venv /opt/b2p \
    && /opt/b2p/bin/pip install . awslambdaric==4.2.2

FROM python:3.11-slim
COPY --from=build /opt/b2p /opt/b2p
# dbt writes target/ and logs/ under /tmp, the only writable path on Lambda and in the
# read-only Fargate tasks; the profile reads every setting from B2P_ATHENA_* variables.
ENV PATH=/opt/b2p/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DBT_PROFILES_DIR=/app \
    DBT_PROJECT_DIR=/app \
    DBT_TARGET_PATH=/tmp/dbt/target \
    DBT_LOG_PATH=/tmp/dbt/logs \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false
WORKDIR /app
COPY dbt_project.yml ./
COPY profiles.yml.example ./profiles.yml
COPY models ./models
COPY macros ./macros
COPY seeds ./seeds
COPY infra/scheduled_dbt.sh ./
# Batch jobs and Lambda functions: nothing long-running for a health check to probe.
HEALTHCHECK NONE
USER 65534:65534
CMD ["b2p", "--help"]
