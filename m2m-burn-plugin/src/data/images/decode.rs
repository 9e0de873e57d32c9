//! Decoding image files into channel-major bytes of one size, in parallel.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::imageops::FilterType;
use image::DynamicImage;
use rayon::prelude::*;

use super::{Color, Fit, ImageSize};
use crate::data::DataError;

/// Above this many files a progress bar is drawn (on a terminal) and progress logged.
const PROGRESS_FROM: usize = 5_000;
/// How many bad files an error names in full.
const NAMED: usize = 5;

/// Decodes `files` into `size` images of `color`, channel-major, one after another.
/// Every bad file is collected; the error names the first few and counts the rest.
pub fn decode_all(
    what: &str,
    files: &[PathBuf],
    color: Color,
    size: ImageSize,
    fit: Fit,
) -> Result<Vec<u8>, DataError> {
    let started = Instant::now();
    let bar = progress_bar(what, files.len());
    let per = color.channels() * size.height * size.width;
    let decoded: Vec<Result<Vec<u8>, String>> = files
        .par_iter()
        .map(|path| {
            let r = decode_one(path, color, size, fit);
            if let Some(b) = &bar {
                b.inc(1);
            }
            r
        })
        .collect();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut pixels = Vec::with_capacity(files.len() * per);
    let mut bad: Vec<(&Path, String)> = Vec::new();
    for (path, r) in files.iter().zip(decoded) {
        match r {
            Ok(p) => pixels.extend(p),
            Err(reason) => bad.push((path, reason)),
        }
    }
    if let Some((first, reason)) = bad.first() {
        if bad.len() == 1 {
            return Err(DataError::corrupt(*first, reason.clone()));
        }
        let listed: Vec<String> = bad.iter().take(NAMED).map(|(p, r)| format!("{}: {r}", p.display())).collect();
        let more = bad.len().saturating_sub(NAMED);
        return Err(DataError::Invalid(format!(
            "{} of {} images of {what} cannot be used (a bad image stops the run; fix or remove the files):\n  {}{}",
            bad.len(),
            files.len(),
            listed.join("\n  "),
            if more > 0 { format!("\n  ... and {more} more") } else { String::new() }
        )));
    }
    if files.len() >= PROGRESS_FROM {
        tracing::info!("{what}: decoded {} images in {:.1} s", files.len(), started.elapsed().as_secs_f64());
    }
    Ok(pixels)
}

fn progress_bar(what: &str, n: usize) -> Option<indicatif::ProgressBar> {
    if n < PROGRESS_FROM {
        return None;
    }
    tracing::info!("{what}: decoding {n} images");
    let bar = indicatif::ProgressBar::with_draw_target(Some(n as u64), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} images, {elapsed} elapsed, {eta} left")
    {
        bar.set_style(style);
    }
    bar.set_message(format!("decoding {what}"));
    Some(bar)
}

/// One file: decoded, converted to `color`, fitted to `size`, channel-major bytes.
pub fn decode_one(path: &Path, color: Color, size: ImageSize, fit: Fit) -> Result<Vec<u8>, String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?
        .decode()
        .map_err(|e| format!("not a readable PNG/JPEG image: {e}"))?;
    Ok(channel_major(&fitted(img, size, fit)?, color))
}

/// An image's bytes as every `ImageSet` holds them: converted to `color`, channel-major.
pub fn channel_major(img: &DynamicImage, color: Color) -> Vec<u8> {
    match color {
        Color::Grey => img.to_luma8().into_raw(),
        Color::Rgb => {
            let rgb = img.to_rgb8().into_raw();
            let mut planar = Vec::with_capacity(rgb.len());
            for ch in 0..3 {
                planar.extend(rgb.iter().skip(ch).step_by(3));
            }
            planar
        }
    }
}

fn fitted(img: DynamicImage, size: ImageSize, fit: Fit) -> Result<DynamicImage, String> {
    let (w, h) = (img.width(), img.height());
    let (tw, th) = (size.width as u32, size.height as u32);
    if (w, h) == (tw, th) {
        return Ok(img);
    }
    match fit {
        Fit::Exact => Err(format!(
            "the image is {w}x{h} (width x height), dataset.images.size is {tw}x{th}; images of other sizes need `fit: Resize`, `CenterCrop` or `ResizeCenterCrop`"
        )),
        Fit::Resize => Ok(img.resize_exact(tw, th, FilterType::Triangle)),
        Fit::CenterCrop => center_crop(img, tw, th),
        Fit::ResizeCenterCrop => {
            let scale = (tw as f64 / w as f64).max(th as f64 / h as f64);
            let (sw, sh) = (((w as f64 * scale).round() as u32).max(tw), ((h as f64 * scale).round() as u32).max(th));
            center_crop(img.resize_exact(sw, sh, FilterType::Triangle), tw, th)
        }
    }
}

fn center_crop(img: DynamicImage, tw: u32, th: u32) -> Result<DynamicImage, String> {
    let (w, h) = (img.width(), img.height());
    if w < tw || h < th {
        return Err(format!(
            "the image is {w}x{h}, smaller than dataset.images.size {tw}x{th}, so `fit: CenterCrop` cannot cut it out"
        ));
    }
    Ok(img.crop_imm((w - tw) / 2, (h - th) / 2, tw, th))
}
