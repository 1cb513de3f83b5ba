# syntax=docker/dockerfile:1
#
# claude-gateway container image.
#
#   docker build -t claude-gateway:dev .
#   docker build --platform linux/arm64 --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t claude-gateway:0.1.0 .
#
# The builder runs the same release build as the test suite (`cargo build --release --locked
# -p claude-gateway`, same lockfile and profile), so the image ships the binary the tests ran.
# The runtime stage is distroless: glibc, libgcc, CA certificates and nothing else - no shell,
# no package manager. The binary reads its whole configuration from the GATEWAY_CONFIG
# environment variable and assembles the PostgreSQL URL from the GATEWAY_PG_* variables itself.

# Base images. `deployer` resolves each tag to its digest when it builds (docker buildx imagetools
# inspect), passes the pinned reference as a build argument (name:tag@sha256:...), and includes
# the digests in the image's content tag, so a base image that moved under its tag gives a new
# image. To pin them for every build, plain `docker build` included, put the digest here:
#   docker buildx imagetools inspect --format '{{.Manifest.Digest}}' rust:1.95-bookworm
#   ARG BUILDER_IMAGE=rust:1.95-bookworm@sha256:<that digest>
# or, for the deployer only, set DEPLOYER_BUILDER_IMAGE and DEPLOYER_RUNTIME_IMAGE to pinned
# references; for a plain build pass them: docker build --build-arg BUILDER_IMAGE=... .
# checkov:skip=CKV_DOCKER_7: the FROM lines name the images through these arguments, whose values are version tags (never latest), pinned by digest at build time
ARG BUILDER_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY gateway ./gateway
COPY deployer ./deployer
COPY bench ./bench
COPY testkit ./testkit
COPY claude-aws ./claude-aws
# Cache mounts keep the crate registry and build directory between builds; the binary is copied
# out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p claude-gateway \
    && install -D -m 0755 target/release/claude-gateway /out/claude-gateway

FROM ${RUNTIME_IMAGE} AS runtime
ARG RUNTIME_IMAGE
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/claude-gateway/claude-gateway
LABEL org.opencontainers.image.title="claude-gateway" \
      org.opencontainers.image.description="Drop-in Claude apps gateway: Claude Code sign-in through your OIDC IdP, inference on Amazon Bedrock" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
COPY --from=builder /out/claude-gateway /usr/local/bin/claude-gateway
# 65532 is the distroless "nonroot" user.
USER 65532:65532
EXPOSE 8080
# Liveness only (/healthz never touches the database); the load balancer checks /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/claude-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/claude-gateway"]
CMD ["--config-env", "GATEWAY_CONFIG"]
