//! The first draws of each of m2m's random streams, pinned. A run directory promises a
//! resumed run (perhaps by a newer m2m) the numbers of an uninterrupted one, so a change
//! of these numbers must be a decision, not a side effect of a dependency bump (rand's
//! distributions, the chacha20 generator, burn's generator) or of a refactoring. When
//! one of these tests fails, the streams changed: say so in the release notes, or undo it.

use burn::tensor::Tensor;
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::data::{augment_into, Augmentation};
use m2m_core::sampling::{ClassIndex, SamplerKind};
use m2m_core::seed::{seeded_draws, step_seed, stream_rng, ChaCha12Rng, SeedStream};
use m2m_core::smote::smote;
use m2m_core::translation::{acceptance_draws, plan_slots, start_noise, RandomStart, SeedSelection};
use rand::Rng;

const SEED: u64 = 2020;
const EPOCH: usize = 3;

fn rng(stream: SeedStream) -> ChaCha12Rng {
    stream_rng(SEED, EPOCH, stream)
}

#[test]
fn each_stream_starts_with_the_same_numbers() {
    let streams = [
        SeedStream::Sampling,
        SeedStream::Augmentation,
        SeedStream::Translation,
        SeedStream::Smote,
        SeedStream::StepDraws,
    ];
    let first: Vec<[u64; 2]> = streams
        .iter()
        .map(|&s| {
            let mut r = rng(s);
            [r.next_u64(), r.next_u64()]
        })
        .collect();
    assert_eq!(first, PINNED_GENERATOR, "{first:?}");
}

#[test]
fn sampler_orders_are_pinned() {
    let index = ClassIndex::new(&[0, 0, 0, 0, 0, 1, 1, 2], 3);
    let natural = index.epoch_order(SamplerKind::Natural, &mut rng(SeedStream::Sampling));
    let balanced = index.epoch_order(SamplerKind::ClassBalanced, &mut rng(SeedStream::Sampling));
    assert_eq!((natural.as_slice(), balanced.as_slice()), PINNED_SAMPLER, "{natural:?} {balanced:?}");
}

#[test]
fn augmentations_are_pinned() {
    let image: Vec<u8> = (0..16).map(|i| i * 16).collect();
    let aug = Augmentation { crop_padding: 2, horizontal_flip: true };
    let mut r = rng(SeedStream::Augmentation);
    let mut out = [0f32; 16];
    let images: Vec<Vec<u8>> = (0..4)
        .map(|_| {
            augment_into(&image, (1, 4, 4), aug, &mut r, &mut out);
            out.iter().map(|&v| (v * 255.0).round() as u8).collect()
        })
        .collect();
    assert_eq!(images, PINNED_AUGMENTATION, "{images:?}");
}

/// M2m's draws in the order one batch makes them: the slot plan, the random starts, the
/// acceptance draws.
#[test]
fn translation_draws_are_pinned() {
    let mut r = rng(SeedStream::Translation);
    let planned = plan_slots(&[0, 0, 0, 1, 1, 2, 2, 2], &[100, 10, 2], 0.999, SeedSelection::PerSample, &mut r);
    let slots: Vec<[usize; 4]> = planned.iter().map(|p| [p.slot, p.target, p.seed, p.seed_class]).collect();
    let starts: Vec<u32> = start_noise([planned.len(), 1, 2, 2], RandomStart::ReferenceChannelwise, 0.5, &mut r)
        .iter()
        .map(|v| v.to_bits())
        .collect();
    let accepted = acceptance_draws(&planned, &mut r);
    assert_eq!(slots, PINNED_SLOTS, "{slots:?}");
    assert_eq!(starts, PINNED_STARTS, "{starts:?}");
    assert_eq!(accepted, PINNED_ACCEPTANCE, "{accepted:?}");
}

#[test]
fn smote_samples_are_pinned() {
    let pixels = [0u8, 10, 20, 30, 40, 50, 200, 210, 220, 230];
    let s = smote(&pixels, 2, &[0, 0, 0, 1, 1], 2, &mut rng(SeedStream::Smote));
    assert_eq!((s.pixels.as_slice(), s.labels.as_slice()), PINNED_SMOTE, "{:?} {:?}", s.pixels, s.labels);
}

/// The hook's dropout masks: burn's generator, seeded per draw from the step's seed.
#[test]
fn step_dropout_masks_are_pinned() {
    let device = Default::default();
    let dropout = m2m_burn_plugin::nn::DropoutConfig::new(0.5).init();
    let masks: Vec<String> = seeded_draws(step_seed(SEED, EPOCH, 5), || {
        (0..2)
            .map(|_| {
                let kept = dropout.forward(Tensor::<Cpu, 2>::ones([1, 24], &device)).into_data();
                kept.to_vec::<f32>().unwrap().iter().map(|&v| if v > 0.0 { '1' } else { '0' }).collect()
            })
            .collect()
    });
    assert_eq!(masks, PINNED_DROPOUT, "{masks:?}");
}

const PINNED_GENERATOR: [[u64; 2]; 5] = [
    [2018628921014697266, 2010949948422897079],
    [3561903781107360997, 4909163189774221954],
    [8929500914097038321, 2608695123402089392],
    [1937268534743619744, 5647157638164883720],
    [3299450298767002005, 4915210534740452673],
];
const PINNED_SAMPLER: (&[usize], &[usize]) = (&[6, 2, 3, 0, 5, 7, 1, 4], &[7, 7, 3, 5, 7, 7, 0, 4]);
const PINNED_AUGMENTATION: [[u8; 16]; 4] = [
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 32, 0, 64, 80, 96],
    [0, 0, 176, 160, 0, 0, 240, 224, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 48, 32, 16, 0, 112, 96, 80, 64],
    [96, 80, 64, 0, 160, 144, 128, 0, 224, 208, 192, 0, 0, 0, 0, 0],
];
const PINNED_SLOTS: [[usize; 4]; 5] = [[3, 1, 0, 0], [4, 1, 2, 0], [5, 2, 1, 0], [6, 2, 0, 0], [7, 2, 0, 0]];
const PINNED_STARTS: [u32; 20] = [
    3162280191, 3190725886, 3186051200, 1039900867, 3189349957, 1037570311, 3188877154, 3163849130, 3185142103,
    1043314363, 3158844379, 1018633828, 1034008876, 3183449102, 3190326906, 1036531093, 1028708782, 1036844305,
    1043567144, 3174713603,
];
const PINNED_ACCEPTANCE: [bool; 5] = [false, true, false, true, false];
const PINNED_SMOTE: (&[u8], &[usize]) = (&[218, 228], &[1]);
const PINNED_DROPOUT: [&str; 2] = ["101101110100011110111101", "000001101010110010100011"];
