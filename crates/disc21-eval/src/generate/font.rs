//! A 3×5 pixel font for the overlaid captions of generated queries (no font files needed).

/// Rows of a glyph, top to bottom; bit 2 is the left column.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c.to_ascii_uppercase() {
        'A' => [0b010, 0b101, 0b111, 0b101, 0b101],
        'B' => [0b110, 0b101, 0b110, 0b101, 0b110],
        'C' => [0b011, 0b100, 0b100, 0b100, 0b011],
        'D' => [0b110, 0b101, 0b101, 0b101, 0b110],
        'E' => [0b111, 0b100, 0b110, 0b100, 0b111],
        'F' => [0b111, 0b100, 0b110, 0b100, 0b100],
        'G' => [0b011, 0b100, 0b101, 0b101, 0b011],
        'H' => [0b101, 0b101, 0b111, 0b101, 0b101],
        'I' => [0b111, 0b010, 0b010, 0b010, 0b111],
        'K' => [0b101, 0b101, 0b110, 0b101, 0b101],
        'L' => [0b100, 0b100, 0b100, 0b100, 0b111],
        'M' => [0b101, 0b111, 0b111, 0b101, 0b101],
        'N' => [0b110, 0b101, 0b101, 0b101, 0b101],
        'O' => [0b010, 0b101, 0b101, 0b101, 0b010],
        'P' => [0b110, 0b101, 0b110, 0b100, 0b100],
        'R' => [0b110, 0b101, 0b110, 0b101, 0b101],
        'S' => [0b011, 0b100, 0b010, 0b001, 0b110],
        'T' => [0b111, 0b010, 0b010, 0b010, 0b010],
        'U' => [0b101, 0b101, 0b101, 0b101, 0b111],
        'W' => [0b101, 0b101, 0b111, 0b111, 0b101],
        'Y' => [0b101, 0b101, 0b010, 0b010, 0b010],
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b110, 0b001, 0b010, 0b100, 0b111],
        '3' => [0b110, 0b001, 0b010, 0b001, 0b110],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b110, 0b001, 0b110],
        '6' => [0b011, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b110],
        'J' => [0b001, 0b001, 0b001, 0b101, 0b010],
        'Q' => [0b010, 0b101, 0b101, 0b110, 0b011],
        'V' => [0b101, 0b101, 0b101, 0b101, 0b010],
        'X' => [0b101, 0b101, 0b010, 0b101, 0b101],
        'Z' => [0b111, 0b001, 0b010, 0b100, 0b111],
        '!' => [0b010, 0b010, 0b010, 0b000, 0b010],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        ':' => [0b000, 0b010, 0b000, 0b010, 0b000],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        '#' => [0b101, 0b111, 0b101, 0b111, 0b101],
        ' ' => [0; 5],
        _ => return None,
    })
}

/// Width in pixels of `text` drawn at `scale` (unknown characters are skipped).
pub(crate) fn text_width(text: &str, scale: u32) -> u32 {
    let n = text.chars().filter(|&c| glyph(c).is_some()).count() as u32;
    (n * 4).saturating_sub(1) * scale
}

/// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale`×`scale` block.
pub(crate) fn draw_text(
    img: &mut image::RgbImage,
    text: &str,
    x: i64,
    y: i64,
    scale: u32,
    colour: [u8; 3],
) {
    let mut pen = x;
    let s = i64::from(scale);
    for rows in text.chars().filter_map(glyph) {
        for (ry, row) in rows.iter().enumerate() {
            for rx in 0..3 {
                if row & (0b100 >> rx) == 0 {
                    continue;
                }
                let (x0, y0) = (pen + rx * s, y + ry as i64 * s);
                for py in y0..y0 + s {
                    for px in x0..x0 + s {
                        if px >= 0
                            && py >= 0
                            && px < i64::from(img.width())
                            && py < i64::from(img.height())
                        {
                            img.put_pixel(px as u32, py as u32, image::Rgb(colour));
                        }
                    }
                }
            }
        }
        pen += 4 * s;
    }
}
