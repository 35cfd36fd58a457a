# medic's image: built from this repository, run as uid 65532 with nothing
# in the image but the binary and the C runtime it links (no shell, no
# package manager).
#
#   docker build -t ghcr.io/medic-dev/medic:0.1.0 .
#
# The tag is the version in Cargo.toml, as deploy/base/deployment.yaml names it.

# The builder: the Rust release medic is tested with (rust-version in
# Cargo.toml or later), on the Debian release the runtime image is built from.
FROM docker.io/library/rust:1.89-bookworm AS build
WORKDIR /src
# What the binary embeds: built-in playbooks, bundled fixtures, LLM prompts,
# the kube-prometheus rules it reports coverage of.
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY playbooks playbooks
COPY fixtures fixtures
COPY prompts prompts
COPY reference reference
RUN cargo build --release --locked --bin medic \
    && install -D -m 0555 target/release/medic /out/medic

# glibc and libgcc only (tests/image.rs checks the binary needs no more);
# the `nonroot` variant runs as uid and gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/medic /medic
USER 65532:65532
ENTRYPOINT ["/medic"]
CMD ["run", "--config", "/etc/medic/medic.yaml"]
