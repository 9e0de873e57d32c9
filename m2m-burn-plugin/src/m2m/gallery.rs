//! A PNG gallery of translations: per row the seed, its translation and their amplified
//! difference, with the classes and g's confidence written beside them.

use std::path::Path;

use anyhow::Context;
use image::{Rgb, RgbImage};

/// One row of the gallery. Images are channel-major `[c, h, w]` in [0, 1].
#[derive(Debug, Clone)]
pub struct GalleryItem {
    /// The seed image (a majority-class image of the batch), `[c, h, w]` in [0, 1].
    pub seed: Vec<f32>,
    /// Its translation towards the slot's target class, `[c, h, w]` in [0, 1].
    pub translated: Vec<f32>,
    /// Up to a few short lines (about 26 characters fit).
    pub lines: Vec<String>,
}

const TEXT_SCALE: u32 = 2;
const TEXT_COLUMNS: u32 = 26;
const PAD: u32 = 8;

/// Writes `items` as a PNG to `path` (or the format its extension names) and returns the
/// encoded file; `amplify` scales the difference `x* - x0` (mid-grey is no change).
pub fn write_gallery(
    path: &Path,
    items: &[GalleryItem],
    (c, h, w): (usize, usize, usize),
    amplify: f32,
) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(!items.is_empty(), "{}: no translation to draw", path.display());
    let zoom = (128 / h.max(w)).max(1) as u32;
    let (cell_w, cell_h) = (w as u32 * zoom, h as u32 * zoom);
    let text_w = TEXT_COLUMNS * 8 * TEXT_SCALE;
    let header = 8 + 2 * PAD;
    let width = PAD + 3 * (cell_w + PAD) + text_w + PAD;
    let height = header + items.len() as u32 * (cell_h + PAD) + PAD;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let amp_title = format!("difference x{amplify}");
    for (col, title) in ["seed", "translation", amp_title.as_str()].iter().enumerate() {
        draw_text(&mut img, PAD + col as u32 * (cell_w + PAD), PAD, title, 1);
    }
    for (row, item) in items.iter().enumerate() {
        let y = header + row as u32 * (cell_h + PAD);
        let diff: Vec<f32> = item.translated.iter().zip(&item.seed).map(|(t, s)| 0.5 + amplify * (t - s)).collect();
        for (col, pixels) in [&item.seed, &item.translated, &diff].into_iter().enumerate() {
            blit(&mut img, PAD + col as u32 * (cell_w + PAD), y, pixels, (c, h, w), zoom);
        }
        for (i, line) in item.lines.iter().enumerate() {
            let line: String = line.chars().take(TEXT_COLUMNS as usize).collect();
            draw_text(&mut img, PAD + 3 * (cell_w + PAD), y + i as u32 * 10 * TEXT_SCALE, &line, TEXT_SCALE);
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Encoded first and written atomically: a reader never sees half a picture.
    let mut png = Vec::new(); // (or the format the extension names)
    let format = image::ImageFormat::from_path(path).unwrap_or(image::ImageFormat::Png);
    img.write_to(&mut std::io::Cursor::new(&mut png), format)
        .with_context(|| format!("encoding the gallery {}", path.display()))?;
    crate::fs::write_atomic(path, &png).with_context(|| format!("writing the gallery {}", path.display()))?;
    Ok(png)
}

fn blit(img: &mut RgbImage, x0: u32, y0: u32, pixels: &[f32], (c, h, w): (usize, usize, usize), zoom: u32) {
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    for y in 0..h {
        for x in 0..w {
            let at = |ch: usize| pixels[(ch.min(c - 1) * h + y) * w + x];
            let rgb = Rgb([byte(at(0)), byte(at(1)), byte(at(2))]);
            for dy in 0..zoom {
                for dx in 0..zoom {
                    img.put_pixel(x0 + x as u32 * zoom + dx, y0 + y as u32 * zoom + dy, rgb);
                }
            }
        }
    }
}

/// ASCII text in the public-domain 8x8 font; other characters are drawn as '?'.
fn draw_text(img: &mut RgbImage, x0: u32, y0: u32, text: &str, scale: u32) {
    use font8x8::UnicodeFonts;
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(ch).or_else(|| font8x8::BASIC_FONTS.get('?')).unwrap_or([0; 8]);
        for (gy, bits) in glyph.iter().enumerate() {
            for gx in 0..8u32 {
                if bits >> gx & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (x, y) = (x0 + (i as u32 * 8 + gx) * scale + dx, y0 + gy as u32 * scale + dy);
                            if x < img.width() && y < img.height() {
                                img.put_pixel(x, y, Rgb([0, 0, 0]));
                            }
                        }
                    }
                }
            }
        }
    }
}
