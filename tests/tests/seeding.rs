//! Seeded draws are the same in every run, whatever other threads do meanwhile: networks
//! initialised from a seed are bit-identical while other threads load checkpoints, import
//! foreign files, build networks and drop out, because nothing in m2m draws from burn's
//! process-wide generator outside `m2m_core::seed::with_seed`.
//!
//! A regression (a load that draws a throw-away initialisation, as `net_from_bytes` once
//! did) makes this fail within a few rounds: the noise threads below draw in a tight loop
//! while the seeded threads initialise.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;

use burn::tensor::Tensor;
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::import::load_any_classifier;
use m2m_burn_plugin::model::{load_classifier, net_from_bytes, net_to_bytes, save_classifier, Architecture, ModelSpec};
use m2m_burn_plugin::nn::DropoutConfig;
use m2m_core::seed::{seeded_draws, step_seed};
use m2m_tests::torch_files::{as_reference_state_dict, safetensors_bytes};

const SEEDED_THREADS: usize = 3;
const NOISE_THREADS: usize = 3;
const ROUNDS: usize = 20;

/// Every float of a network (parameters and running statistics) as bits, in visiting
/// order: what "the same network" means here (a record's bytes also hold parameter ids,
/// which are new for every network).
fn bits(net: &m2m_burn_plugin::model::Net<Cpu>) -> Vec<u32> {
    m2m_tests::snapshot(net).into_iter().flatten().map(f32::to_bits).collect()
}

fn resnet32() -> ModelSpec {
    let (mean, std) = m2m_burn_plugin::data::DatasetName::Cifar10.normalization();
    ModelSpec { architecture: Architecture::ResNet32, cosine_head: false, in_channels: 3, num_classes: 10, mean, std }
}

fn small_cnn() -> ModelSpec {
    ModelSpec {
        architecture: Architecture::SmallCnn,
        cosine_head: true,
        in_channels: 1,
        num_classes: 7,
        mean: vec![0.3],
        std: vec![0.3],
    }
}

/// A dropout mask drawn as the burn-train hook draws it in training step `iteration`.
fn hooked_mask(iteration: usize) -> Vec<f32> {
    let ones = Tensor::<Cpu, 2>::ones([32, 32], &Default::default());
    let dropout = DropoutConfig::new(0.5).init();
    seeded_draws(step_seed(9, 1, iteration), || dropout.forward(ones)).into_data().to_vec().unwrap()
}

/// Loads, imports, builds and draws unseeded dropout masks until `stop`: every way m2m
/// touches a network without meaning to draw from a seed.
fn noise(dir: &std::path::Path, stop: &AtomicBool, rounds: &AtomicUsize) {
    let device = Default::default();
    let (resnet, small) = (resnet32(), small_cnn());
    let small_bytes = std::fs::read(dir.join("small.bin")).unwrap();
    let ones = Tensor::<Cpu, 2>::ones([64, 64], &device);
    let dropout = DropoutConfig::new(0.3).init();
    while !stop.load(Ordering::SeqCst) {
        load_classifier::<Cpu>(&resnet, &dir.join("resnet"), &device).unwrap();
        load_any_classifier::<Cpu>(&resnet, &dir.join("resnet.safetensors"), &device).unwrap();
        net_from_bytes::<Cpu>(&small, &small_bytes, &device).unwrap();
        let _ = small.init_zeroed::<Cpu>(&device);
        let _ = small.init_seeded::<Cpu>(1234, &device);
        let _ = dropout.forward(ones.clone()).into_data();
        rounds.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn seeded_networks_and_masks_are_bit_identical_while_other_threads_load_and_build() {
    let device = Default::default();
    let specs = [resnet32(), small_cnn()];
    // The reference numbers, drawn while nothing else runs.
    let reference: Vec<Vec<u32>> = specs.iter().map(|s| bits(&s.init_seeded::<Cpu>(7, &device))).collect();
    let masks: Vec<Vec<f32>> = (0..ROUNDS).map(hooked_mask).collect();
    assert_ne!(masks[0], masks[1], "each step draws its own mask");
    assert!(masks[0].contains(&0.0) && masks[0].contains(&2.0), "a dropout mask");
    // What the noise threads load: an m2m checkpoint, a foreign (safetensors) file, bytes.
    let dir = tempfile::tempdir().unwrap();
    let other = resnet32().init_seeded::<Cpu>(8, &device);
    save_classifier(&other, &resnet32(), &dir.path().join("resnet")).unwrap();
    std::fs::write(dir.path().join("resnet.safetensors"), safetensors_bytes(&as_reference_state_dict(&other, false)))
        .unwrap();
    std::fs::write(dir.path().join("small.bin"), net_to_bytes(&small_cnn().init_seeded::<Cpu>(9, &device))).unwrap();

    let (stop, noise_rounds, start) = (AtomicBool::new(false), AtomicUsize::new(0), Barrier::new(SEEDED_THREADS + 1));
    std::thread::scope(|scope| {
        for _ in 0..NOISE_THREADS {
            scope.spawn(|| noise(dir.path(), &stop, &noise_rounds));
        }
        let seeded: Vec<_> = (0..SEEDED_THREADS)
            .map(|thread| {
                let (specs, reference, masks, start) = (&specs, &reference, &masks, &start);
                scope.spawn(move || {
                    start.wait();
                    for (round, mask) in masks.iter().enumerate() {
                        for (spec, want) in specs.iter().zip(reference) {
                            let got = bits(&spec.init_seeded::<Cpu>(7, &Default::default()));
                            assert!(
                                got == *want,
                                "thread {thread}, round {round}: {:?} seeded with 7 differs from the reference",
                                spec.architecture
                            );
                        }
                        assert_eq!(hooked_mask(round), *mask, "thread {thread}: the mask of step {round}");
                    }
                })
            })
            .collect();
        // The noise threads have started drawing before the seeded ones begin.
        while noise_rounds.load(Ordering::SeqCst) < NOISE_THREADS {
            std::thread::yield_now();
        }
        start.wait();
        let results: Vec<_> = seeded.into_iter().map(|h| h.join()).collect();
        stop.store(true, Ordering::SeqCst);
        for r in results {
            if let Err(panic) = r {
                std::panic::resume_unwind(panic);
            }
        }
    });
    eprintln!(
        "{} noise rounds ran beside {} seeded rounds",
        noise_rounds.load(Ordering::SeqCst),
        SEEDED_THREADS * ROUNDS
    );
}

#[test]
fn a_draw_inside_with_seed_that_draws_again_is_refused_not_a_hang() {
    let device = Default::default();
    let ones = Tensor::<Cpu, 2>::ones([4, 4], &device);
    let dropout = DropoutConfig::new(0.5).init();
    let nested = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m2m_core::seed::with_seed::<Cpu, _>(&device, 1, || dropout.forward(ones.clone()))
    }));
    let message = nested.expect_err("with_seed inside with_seed");
    let text =
        message.downcast_ref::<String>().cloned().or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()));
    assert!(text.unwrap_or_default().contains("inside with_seed"), "the panic names the mistake");
    // The lock is free again: the next seeded draw goes through.
    m2m_core::seed::with_seed::<Cpu, _>(&device, 1, || ());
}
