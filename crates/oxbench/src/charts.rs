//! SVG charts (plotters' SVG backend; no font files needed: text is written
//! as SVG `<text>` elements):
//! - `cost.svg`: relative cost per workload row and allocator;
//! - `memory.svg`: peak RSS ratio per workload row and allocator;
//! - `threads-BENCH.svg`: throughput (or time) against thread count, for
//!   workloads run at more than one thread count.

use crate::report::{Cell, Row};
use crate::workloads::Metric;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

type Error = Box<dyn std::error::Error>;

fn color(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Grouped bars: one group per row, one bar per allocator.
fn bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    rows: &[Row],
    allocs: &[String],
    value: impl Fn(&Cell) -> Option<f64>,
) -> Result<(), Error> {
    let n = rows.len().max(1);
    let ymax = rows
        .iter()
        .flat_map(|r| r.cells.iter().filter_map(&value))
        .fold(1.0f64, f64::max)
        * 1.1;
    let width = (160 + n * (allocs.len() * 8 + 16)).max(800) as u32;
    let root = SVGBackend::new(path, (width, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(150)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n as f64, 0f64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_desc)
        .draw()?;
    let slot = 0.8 / allocs.len().max(1) as f64;
    for (j, alloc) in allocs.iter().enumerate() {
        let c = color(j);
        let rects: Vec<_> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let v = r.cells.iter().find(|c| &c.alloc == alloc).and_then(&value)?;
                let x0 = i as f64 + 0.1 + j as f64 * slot;
                Some(Rectangle::new([(x0, 0.0), (x0 + slot, v)], c.filled()))
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(alloc.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
    }
    chart.draw_series(LineSeries::new([(0.0, 1.0), (n as f64, 1.0)], BLACK.stroke_width(1)))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    let style = ("sans-serif", 13)
        .into_font()
        .transform(FontTransform::Rotate90)
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, r) in rows.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(r.label(), (px, py + 8), style.clone()))?;
    }
    root.present()?;
    Ok(())
}

/// Throughput (or wall time) against thread count for one workload.
fn threads_chart(path: &Path, bench: &str, rows: &[&Row], allocs: &[String]) -> Result<(), Error> {
    let metric = rows[0].metric;
    let value = |c: &Cell| match metric {
        Metric::Throughput => c.throughput.map(|s| s.median),
        Metric::Time => c.wall.map(|s| s.median),
        Metric::Latency => c.p99.map(|s| s.median),
    };
    let tmax = rows.iter().map(|r| r.threads).max().unwrap_or(1) as f64;
    let ymax = rows
        .iter()
        .flat_map(|r| r.cells.iter().filter_map(value))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let y_desc = match metric {
        Metric::Throughput => format!("throughput ({}), higher is better", rows[0].unit),
        Metric::Time => "wall time (s), lower is better".to_string(),
        Metric::Latency => "p99 request latency (ns), lower is better".to_string(),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{bench}: scaling with threads"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.5f64..tmax + 0.5, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .x_labels(tmax as usize + 2)
        .x_label_formatter(&|x| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .y_label_formatter(&|y| crate::report::human(*y))
        .draw()?;
    for (j, alloc) in allocs.iter().enumerate() {
        let c = color(j);
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| {
                let v = r.cells.iter().find(|c| &c.alloc == alloc).and_then(value)?;
                Some((r.threads as f64, v))
            })
            .collect();
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
            .label(alloc.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], c.stroke_width(2)));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Writes every chart into `dir`; returns the files written.
pub fn write_all(dir: &Path, rows: &[Row], allocs: &[String], baseline: &str) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let cost = dir.join("cost.svg");
    bars(
        &cost,
        &format!("Relative cost per workload (time, or inverse throughput) vs {baseline}; lower is better"),
        "relative cost",
        rows,
        allocs,
        |c| c.cost,
    )?;
    files.push(cost);
    let mem = dir.join("memory.svg");
    bars(
        &mem,
        &format!("Peak RSS relative to {baseline}; lower is better"),
        "peak RSS ratio",
        rows,
        allocs,
        |c| c.rss_ratio,
    )?;
    files.push(mem);
    let mut benches: Vec<&str> = Vec::new();
    for r in rows {
        if !benches.contains(&r.bench.as_str()) {
            benches.push(&r.bench);
        }
    }
    for b in benches {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.bench == b).collect();
        if rs.len() > 1 {
            let f = dir.join(format!("threads-{b}.svg"));
            threads_chart(&f, b, &rs, allocs)?;
            files.push(f);
        }
    }
    Ok(files)
}
