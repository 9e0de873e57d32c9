//! Our CPU kernels: the convolutions and BatchNorm numerics behind m2m's networks on the
//! Flex backend, written over contiguous `f32` slices and run inside burn as custom ops.
//! Not part of the API (the binaries' benchmarks and the project's kernel tests use them):
//! users reach them through the layers in [`crate::model`].

pub mod batch_norm;
pub(crate) mod buffers;
pub mod conv;
pub(crate) mod cpu;
