//! Charts drawn with `plotters` (PNG): precision–recall curves, accuracy bars, throughput bars.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ReportError, Result};
use crate::benchmark::BenchmarkResult;

const SIZE: (u32, u32) = (900, 600);

fn colour(i: usize) -> RGBColor {
    // Colour-blind-safe pair first (blue, orange), then more.
    const C: [RGBColor; 6] = [
        RGBColor(0, 114, 178),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(213, 94, 0),
    ];
    C[i % C.len()]
}

/// Draws a `SIZE` picture into memory with `draw` and writes it to `path` as PNG. The PNG is
/// encoded with the `image` crate the workspace already builds: plotters' own encoder would pull
/// in a second, older `image` and its codecs.
fn png(
    path: &Path,
    what: &'static str,
    draw: impl for<'a> FnOnce(DrawingArea<BitMapBackend<'a>, Shift>) -> Result<()>,
) -> Result<()> {
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    draw(BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area())?;
    image::save_buffer_with_format(
        path,
        &rgb,
        w,
        h,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(|e| match e {
        image::ImageError::IoError(source) => ReportError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => ReportError::Draw {
            what,
            message: other.to_string(),
        },
    })
}

macro_rules! tryd {
    ($what:expr, $e:expr) => {
        $e.map_err(|e| ReportError::Draw {
            what: $what,
            message: e.to_string(),
        })?
    };
}

/// The legend both charts draw: upper right, on a translucent white box.
fn legend<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    what: &'static str,
) -> Result<()> {
    tryd!(
        what,
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 18))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
    );
    Ok(())
}

/// Precision–recall curves of all models on one chart.
pub(super) fn pr_curves(path: &Path, result: &BenchmarkResult) -> Result<()> {
    const W: &str = "pr_curves.png";
    png(path, W, |root| {
        tryd!(W, root.fill(&WHITE));
        let mut chart = tryd!(
            W,
            ChartBuilder::on(&root)
                .caption(
                    "Precision-recall (pooled predictions, ties pessimistic)",
                    ("sans-serif", 24)
                )
                .margin(16)
                .x_label_area_size(48)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..1.0, 0f64..1.02)
        );
        tryd!(
            W,
            chart
                .configure_mesh()
                .x_desc("Recall")
                .y_desc("Precision")
                .label_style(("sans-serif", 16))
                .draw()
        );
        for (i, m) in result.models.iter().enumerate() {
            let c = colour(i);
            let pts = m.metrics.curve.thinned(2000);
            let label = format!("{} (µAP {:.3})", m.label(), m.metrics.micro_ap);
            tryd!(
                W,
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(3)))
                    .map(|s| s.label(label).legend(move |(x, y)| PathElement::new(
                        vec![(x, y), (x + 24, y)],
                        c.stroke_width(3)
                    )))
            );
        }
        legend(&mut chart, W)?;
        tryd!(W, root.present());
        Ok(())
    })
}

/// Grouped bars: one group per label, one bar per model. `None` values are not drawn.
#[allow(clippy::too_many_arguments)] // private helper; every argument is a plain chart setting
fn grouped_bars(
    path: &Path,
    what: &'static str,
    title: &str,
    y_desc: &str,
    groups: &[String],
    values: &[(String, Vec<Option<f64>>)],
    y_max: f64,
    percent: bool,
) -> Result<()> {
    png(path, what, |root| {
        tryd!(what, root.fill(&WHITE));
        let n = groups.len().max(1);
        let mut chart = tryd!(
            what,
            ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 24))
                .margin(16)
                .x_label_area_size(48)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..n as f64, 0f64..y_max)
        );
        tryd!(
            what,
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_desc(y_desc)
                .label_style(("sans-serif", 16))
                .draw()
        );
        let m = values.len().max(1) as f64;
        let width = 0.8 / m;
        for (j, (name, vals)) in values.iter().enumerate() {
            let c = colour(j);
            let bars: Vec<(f64, f64)> = vals
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i as f64 + 0.1 + j as f64 * width, v)))
                .collect();
            tryd!(
                what,
                chart
                    .draw_series(bars.iter().map(|&(x, v)| Rectangle::new(
                        [(x, 0.0), (x + width * 0.95, v)],
                        c.filled()
                    )))
                    .map(
                        |s| s.label(name.clone()).legend(move |(x, y)| Rectangle::new(
                            [(x, y - 6), (x + 14, y + 6)],
                            c.filled()
                        ))
                    )
            );
            tryd!(
                what,
                chart.draw_series(bars.iter().map(|&(x, v)| {
                    let text = if percent {
                        format!("{:.1}%", 100.0 * v)
                    } else {
                        format!("{v:.1}")
                    };
                    Text::new(
                        text,
                        (x + width * 0.1, v + y_max * 0.01),
                        ("sans-serif", 15).into_font(),
                    )
                }))
            );
        }
        // Group names centred under their bars (drawn by hand: the axis has no tick per group).
        for (i, g) in groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            let style = TextStyle::from(("sans-serif", 18).into_font())
                .pos(Pos::new(HPos::Center, VPos::Top));
            tryd!(what, root.draw(&Text::new(g.clone(), (px, py + 10), style)));
        }
        legend(&mut chart, what)?;
        tryd!(what, root.present());
        Ok(())
    })
}

/// Accuracy, top-3, top-k, µAP, recall@P90 per model.
pub(super) fn accuracy_bars(path: &Path, result: &BenchmarkResult) -> Result<()> {
    let k = result.models.first().map_or(5, |m| m.metrics.top_k);
    let groups = vec![
        "accuracy".to_string(),
        "top-3".to_string(),
        format!("top-{k}"),
        "µAP".to_string(),
        "recall@P90".to_string(),
    ];
    let values: Vec<(String, Vec<Option<f64>>)> = result
        .models
        .iter()
        .map(|m| {
            let x = &m.metrics;
            (
                m.label(),
                vec![
                    Some(x.accuracy),
                    Some(x.top3_accuracy),
                    Some(x.topk_accuracy),
                    Some(x.micro_ap),
                    Some(x.recall_at_p90),
                ],
            )
        })
        .collect();
    grouped_bars(
        path,
        "accuracy.png",
        "Copy detection accuracy",
        "fraction",
        &groups,
        &values,
        1.12,
        true,
    )
}

/// Extraction throughput (end to end and model alone) per model.
pub(super) fn throughput_bars(path: &Path, result: &BenchmarkResult) -> Result<()> {
    let groups = vec![
        "extraction (end to end)".to_string(),
        "model alone".to_string(),
    ];
    let values: Vec<(String, Vec<Option<f64>>)> = result
        .models
        .iter()
        .map(|m| {
            (
                m.label(),
                vec![
                    super::markdown::combined_rate(m, |t| t.images_per_second),
                    super::markdown::combined_rate(m, |t| t.model_images_per_second),
                ],
            )
        })
        .collect();
    let max = values
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let title = if max > 0.0 {
        "Extraction throughput"
    } else {
        "Extraction throughput (all embeddings cached)"
    };
    grouped_bars(
        path,
        "throughput.png",
        title,
        "images / s",
        &groups,
        &values,
        (max * 1.2).max(1.0),
        false,
    )
}
