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

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
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

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/claude-gateway/claude-gateway
LABEL org.opencontainers.image.title="claude-gateway" \
      org.opencontainers.image.description="Drop-in Claude apps gateway: Claude Code sign-in through your OIDC IdP, inference on Amazon Bedrock" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=builder /out/claude-gateway /usr/local/bin/claude-gateway
# 65532 is the distroless "nonroot" user.
USER 65532:65532
EXPOSE 8080
# Liveness only (/healthz never touches the database); the load balancer checks /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/claude-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/claude-gateway"]
CMD ["--config-env", "GATEWAY_CONFIG"]
