# The image the Helm chart runs: `callq serve` and `callq worker` from one binary.
# The Rust image follows `rust-version` in Cargo.toml.
FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
# The product alone: no simulator, demo or bench (the default `lab` feature is off).
RUN cargo build --release --locked --no-default-features && strip target/release/callq

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 callq
COPY --from=build /src/target/release/callq /usr/local/bin/callq
USER 10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/callq"]
CMD ["serve"]
