//! Postern's icon, drawn here in code: a lit arched gate (a postern) with a letter in front,
//! on a rounded teal square. The same drawing gives the window icon, the tray icons (with a
//! status dot: running, stopped, error) and the PNG files in `assets/icons/`, which a test
//! keeps identical to this code (`POSTERN_WRITE_ICONS=1 cargo test icon` rewrites them).
//! `assets/postern.svg` is the same picture by hand, for scalable use.

/// What the tray icon's status dot says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// No dot: the application icon.
    None,
    /// Green: the services are running.
    Running,
    /// Grey: the services are stopped (or starting/stopping).
    Stopped,
    /// Red: the services failed, or a listener is down.
    Error,
}

/// Straight (unpremultiplied) RGBA colour with components in 0..=1.
type Rgba = [f32; 4];

fn hex(rgb: u32) -> Rgba {
    [
        ((rgb >> 16) & 0xff) as f32 / 255.0,
        ((rgb >> 8) & 0xff) as f32 / 255.0,
        (rgb & 0xff) as f32 / 255.0,
        1.0,
    ]
}

fn mix(a: Rgba, b: Rgba, t: f32) -> Rgba {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
        a[3] + (b[3] - a[3]) * t,
    ]
}

/// Signed distance from `p` to a box centred at `c` with half size `h` and corner radius `r`.
fn rounded_box(p: (f32, f32), c: (f32, f32), h: (f32, f32), r: f32) -> f32 {
    let qx = (p.0 - c.0).abs() - h.0 + r;
    let qy = (p.1 - c.1).abs() - h.1 + r;
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0) - r
}

fn circle(p: (f32, f32), c: (f32, f32), r: f32) -> f32 {
    ((p.0 - c.0).powi(2) + (p.1 - c.1).powi(2)).sqrt() - r
}

/// Distance to the segment a-b minus half the stroke width.
fn segment(p: (f32, f32), a: (f32, f32), b: (f32, f32), half_width: f32) -> f32 {
    let (px, py) = (p.0 - a.0, p.1 - a.1);
    let (bx, by) = (b.0 - a.0, b.1 - a.1);
    let t = ((px * bx + py * by) / (bx * bx + by * by)).clamp(0.0, 1.0);
    ((px - bx * t).powi(2) + (py - by * t).powi(2)).sqrt() - half_width
}

/// An arch: a rectangle topped by a half circle.
fn arch(p: (f32, f32), left: f32, right: f32, spring: f32, bottom: f32) -> f32 {
    let cx = (left + right) / 2.0;
    let r = (right - left) / 2.0;
    let body = rounded_box(
        p,
        (cx, (spring + bottom) / 2.0),
        (r, (bottom - spring) / 2.0),
        0.0,
    );
    body.min(circle(p, (cx, spring), r))
}

/// Paints `colour` over `dst` with coverage `cov`.
fn over(dst: &mut Rgba, colour: Rgba, cov: f32) {
    let a = colour[3] * cov;
    if a <= 0.0 {
        return;
    }
    let out_a = a + dst[3] * (1.0 - a);
    for i in 0..3 {
        dst[i] = (colour[i] * a + dst[i] * dst[3] * (1.0 - a)) / out_a;
    }
    dst[3] = out_a;
}

/// The icon as `size`×`size` straight RGBA bytes.
pub fn rgba(size: u32, badge: Badge) -> Vec<u8> {
    let n = size as f32;
    let mut out = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let p = ((x as f32 + 0.5) / n, (y as f32 + 0.5) / n);
            let px = pixel(p, n, badge);
            out.extend(px.iter().map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8));
        }
    }
    out
}

/// One pixel at normalised position `p` of an `n`-pixel icon.
fn pixel(p: (f32, f32), n: f32, badge: Badge) -> Rgba {
    // Coverage from a signed distance in normalised units: a one-pixel soft edge.
    let cov = |d: f32| (0.5 - d * n).clamp(0.0, 1.0);
    let mut c: Rgba = [0.0; 4];

    // Background: rounded square, teal, darker at the bottom.
    let bg = mix(hex(0x2f7f9f), hex(0x164760), p.1);
    over(
        &mut c,
        bg,
        cov(rounded_box(p, (0.5, 0.5), (0.46, 0.46), 0.18)),
    );

    // The gate: a stone frame and a warm lit doorway.
    over(&mut c, hex(0xdfe7ea), cov(arch(p, 0.22, 0.78, 0.42, 0.88)));
    over(&mut c, hex(0xf4b942), cov(arch(p, 0.29, 0.71, 0.42, 0.88)));

    // The letter in front of it.
    let env = rounded_box(p, (0.5, 0.665), (0.25, 0.165), 0.03);
    over(&mut c, hex(0x0f3a4f), cov(env - 0.02));
    over(&mut c, hex(0xffffff), cov(env));
    let stroke = (0.022f32).max(0.6 / n);
    let ink = hex(0x2f7f9f);
    let flap = segment(p, (0.27, 0.525), (0.5, 0.69), stroke).min(segment(
        p,
        (0.73, 0.525),
        (0.5, 0.69),
        stroke,
    ));
    over(&mut c, ink, cov(flap.max(env)));

    // Status dot for the tray.
    let dot = match badge {
        Badge::None => None,
        Badge::Running => Some(hex(0x35b34a)),
        Badge::Stopped => Some(hex(0x9aa3a8)),
        Badge::Error => Some(hex(0xe0393e)),
    };
    if let Some(colour) = dot {
        over(&mut c, hex(0xffffff), cov(circle(p, (0.79, 0.79), 0.2)));
        over(&mut c, colour, cov(circle(p, (0.79, 0.79), 0.15)));
    }
    c
}

/// The window icon.
pub fn window_icon() -> eframe::egui::IconData {
    eframe::egui::IconData {
        rgba: rgba(64, Badge::None),
        width: 64,
        height: 64,
    }
}

/// Encodes straight RGBA as a PNG file's bytes.
pub fn png_bytes(size: u32, rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size, size);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("writing to a Vec cannot fail");
        w.write_image_data(rgba)
            .expect("the buffer has size*size*4 bytes");
    }
    out
}

/// Sizes shipped in `assets/icons/` (hicolor theme sizes).
pub const ASSET_SIZES: [u32; 5] = [16, 32, 48, 128, 256];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn decode(bytes: &[u8]) -> (u32, Vec<u8>) {
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        buf.truncate(info.buffer_size());
        (info.width, buf)
    }

    /// The PNGs in assets/icons are this module's drawing (rewrite them with
    /// `POSTERN_WRITE_ICONS=1 cargo test icon`).
    #[test]
    fn icon_assets_match_the_drawing() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/icons");
        let write = std::env::var_os("POSTERN_WRITE_ICONS").is_some();
        for size in ASSET_SIZES {
            let path = dir.join(format!("postern-{size}.png"));
            let pixels = rgba(size, Badge::None);
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, png_bytes(size, &pixels)).unwrap();
            }
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (run with POSTERN_WRITE_ICONS=1)", path.display())
            });
            let (w, got) = decode(&bytes);
            assert_eq!(w, size, "{}", path.display());
            assert!(
                got == pixels,
                "{} differs from the drawing (run with POSTERN_WRITE_ICONS=1)",
                path.display()
            );
        }
    }

    #[test]
    fn badges_differ_and_corners_are_transparent() {
        let run = rgba(32, Badge::Running);
        let stop = rgba(32, Badge::Stopped);
        let err = rgba(32, Badge::Error);
        assert_ne!(run, stop);
        assert_ne!(stop, err);
        assert_eq!(run[3], 0, "top-left corner is outside the rounded square");
        let centre = ((16 * 32 + 16) * 4) as usize;
        assert_eq!(run[centre + 3], 255);
    }
}
