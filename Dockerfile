# syntax=docker/dockerfile:1
#
# mldeploy for CI pipelines:   docker build -t mldeploy .
#                              docker run --rm -v "$PWD:/work" mldeploy validate
#
# Three stages:
#   builder    compiles mldeploy with the crate's minimum Rust (`cargo build --release --locked`, so the
#              image builds exactly the dependency versions in Cargo.lock).
#   terraform  HashiCorp's official image, used only as a source of its single static `terraform`
#              binary at /bin/terraform. `mldeploy infra` runs `terraform` from PATH; nothing else
#              needs it, so drop this stage (and the COPY below) for an image without Terraform, or
#              point TERRAFORM_IMAGE at a mirror or an OpenTofu-compatible image of your own.
#   runtime    Debian slim: glibc for the binary, CA certificates for cluster and registry TLS, and a
#              shell, git and jq for pipeline scripts (GitLab CI runs `script:` in a shell inside the
#              image, so a distroless image would not do). Runs as an unprivileged user.

ARG RUST_VERSION=1.89
ARG DEBIAN_RELEASE=bookworm
ARG TERRAFORM_VERSION=1.9.8
ARG TERRAFORM_IMAGE=hashicorp/terraform:${TERRAFORM_VERSION}

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# The whole crate: build.rs compiles templates/ into the binary, and Cargo.toml names the test and
# bench targets, so they must be present even though only the binary is built. .dockerignore keeps
# target/ and .git/ out of the context.
COPY . .
# Cache mounts keep downloaded crates and build output between builds; the binary is copied out in
# the same step because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin mldeploy \
 && install -m 0755 target/release/mldeploy /usr/local/bin/mldeploy

FROM ${TERRAFORM_IMAGE} AS terraform

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git jq \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --create-home --shell /bin/bash mldeploy
COPY --from=terraform /bin/terraform /usr/local/bin/terraform
COPY --from=builder /usr/local/bin/mldeploy /usr/local/bin/mldeploy
# A numeric user, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /work
# No `ENV CI=true` here: CI systems set CI themselves, and mldeploy turns colour and progress off
# whenever its output is not a terminal, so `docker run -it` keeps them for people.
ENTRYPOINT ["mldeploy"]
CMD ["--help"]
