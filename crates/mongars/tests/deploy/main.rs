//! The deployment files, exercised: the Dockerfile linted, the build
//! context checked for what must stay out, and the image built here (on a
//! base made from Debian's packages) and run as operators run it, and the
//! arm64 binary cross-compiled and run under qemu. Tests that need Docker
//! fail under `CI=true` when the engine is missing.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

mod arm64;
mod compose;
mod context;
mod docker;
mod image;
mod k8s;
mod lint;
