//! `report.md` and `report.json`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::ReportInfo;
use crate::benchmark::{BenchmarkResult, ModelResult};
use crate::dataset::{EvalSet, Protocol};

pub(super) fn report_json(set: &EvalSet, result: &BenchmarkResult, info: &ReportInfo) -> Value {
    json!({
        "tool": concat!("disc21-eval ", env!("CARGO_PKG_VERSION")),
        "started_unix": info.started_unix,
        "wall_seconds": info.wall_seconds,
        "command": info.command,
        "machine": info.machine,
        "dataset": {
            "layout": set.layout,
            "protocol": set.protocol,
            "protocol_description": set.protocol.to_string(),
            "references": set.references.len(),
            "queries": set.queries.len(),
            "queries_with_copy": set.ground_truth.n_queries_with_copy(),
            "ground_truth_pairs": set.ground_truth.n_pairs(),
        },
        "search_k": result.search_k,
        "models": result.models,
    })
}

fn pct(v: f64) -> String {
    format!("{:.2} %", 100.0 * v)
}

fn rate(v: Option<f64>) -> String {
    v.map_or_else(|| "cached".to_string(), |r| format!("{r:.1}"))
}

fn row(
    out: &mut String,
    label: &str,
    models: &[ModelResult],
    cell: impl Fn(&ModelResult) -> String,
) {
    let _ = write!(out, "| {label} |");
    for m in models {
        let _ = write!(out, " {} |", cell(m));
    }
    out.push('\n');
}

pub(super) fn report_md(set: &EvalSet, result: &BenchmarkResult, info: &ReportInfo) -> String {
    let ms = &result.models;
    let mut s = String::new();
    let names: Vec<String> = ms.iter().map(|m| m.label()).collect();
    let _ = writeln!(s, "# DISC21 copy detection: {}\n", names.join(" vs "));
    let study = matches!(set.protocol, Protocol::Study { .. });
    let _ = writeln!(
        s,
        "Protocol: **{}**. {} references, {} queries ({} with a copy among the references, {} ground-truth pairs). \
         Each query retrieves its {} nearest references by cosine similarity of L2-normalised embeddings.\n",
        set.protocol,
        set.references.len(),
        set.queries.len(),
        set.ground_truth.n_queries_with_copy(),
        set.ground_truth.n_pairs(),
        result.search_k
    );
    let k = ms.first().map_or(5, |m| m.metrics.top_k);
    let _ = writeln!(s, "## Results\n");
    let _ = write!(s, "| |");
    for m in ms {
        let _ = write!(s, " {} |", m.label());
    }
    let _ = write!(s, "\n|---|");
    for _ in ms {
        let _ = write!(s, "---:|");
    }
    s.push('\n');
    row(&mut s, "**Accuracy** (true copy ranked first)", ms, |m| {
        pct(m.metrics.accuracy)
    });
    row(&mut s, "Top-3 accuracy", ms, |m| {
        pct(m.metrics.top3_accuracy)
    });
    row(&mut s, &format!("Top-{k} accuracy"), ms, |m| {
        pct(m.metrics.topk_accuracy)
    });
    row(&mut s, "µAP", ms, |m| format!("{:.4}", m.metrics.micro_ap));
    row(&mut s, "Recall at precision 0.9", ms, |m| {
        match m.metrics.threshold_at_p90 {
            Some(_) => format!("{:.4}", m.metrics.recall_at_p90),
            None => "not reached".to_string(),
        }
    });
    row(&mut s, "Recall@1", ms, |m| {
        format!("{:.4}", m.metrics.recall_at_1)
    });
    row(&mut s, "Recall@10", ms, |m| {
        format!("{:.4}", m.metrics.recall_at_10)
    });
    row(&mut s, "Extraction, images/s (end to end)", ms, |m| {
        rate(combined_rate(m, |t| t.images_per_second))
    });
    row(&mut s, "Extraction, images/s (model alone)", ms, |m| {
        rate(combined_rate(m, |t| t.model_images_per_second))
    });
    row(&mut s, "Index build, s", ms, |m| {
        format!("{:.3}", m.search.build_seconds)
    });
    row(&mut s, "Search, s (queries/s)", ms, |m| {
        format!(
            "{:.3} ({:.0})",
            m.search.search_seconds, m.search.queries_per_second
        )
    });
    row(&mut s, "Embedding width", ms, |m| m.dim.to_string());
    row(&mut s, "Skipped images", ms, |m| {
        (m.extract_references.skipped + m.extract_queries.skipped).to_string()
    });
    s.push('\n');
    if study {
        let _ = writeln!(
            s,
            "The study's headline figures are accuracy and top-3 accuracy over the queries whose copy is among the \
             references. µAP and recall@P90 pool the predictions of all queries; at equal scores the wrong \
             predictions count first, as in the ISC2021 evaluation code.\n"
        );
    } else {
        let _ = writeln!(
            s,
            "Official ISC2021 protocol: every ground-truth query, with or without a copy. µAP and recall@P90 pool \
             all predictions (wrong ones first at equal scores); recall@1/@10 are per ground-truth pair.\n"
        );
    }
    let _ = writeln!(s, "![Precision-recall curves](pr_curves.png)\n");
    let _ = writeln!(
        s,
        "![Accuracies](accuracy.png) ![Throughput](throughput.png)\n"
    );
    let _ = writeln!(
        s,
        "## Retrieval gallery\n\nEach row: a query, then the top references of each model, best first; a green frame \
         marks the true copy, and the last column shows the true copy itself.\n\n![Gallery](gallery.png)\n"
    );
    let _ = writeln!(s, "## Models\n");
    let _ = writeln!(
        s,
        "| model | id | weights | weights SHA-256 | dim |\n|---|---|---|---|---:|"
    );
    for m in ms {
        let _ = writeln!(
            s,
            "| {} | `{}` | `{}` | `{}` | {} |",
            m.label(),
            m.model_id,
            m.weights,
            m.weights_hash,
            m.dim
        );
    }
    let _ = writeln!(s, "\n## Stages\n");
    let _ = writeln!(
        s,
        "| model | stage | images | computed | seconds | images/s | model images/s |\n|---|---|---:|---:|---:|---:|---:|"
    );
    for m in ms {
        for (stage, t) in [
            ("extract references", &m.extract_references),
            ("extract queries", &m.extract_queries),
        ] {
            let _ = writeln!(
                s,
                "| {} | {stage} | {} | {} | {:.2} | {} | {} |",
                m.label(),
                t.images,
                t.computed,
                t.seconds,
                rate(t.images_per_second),
                rate(t.model_images_per_second)
            );
        }
        let _ = writeln!(
            s,
            "| {} | index ({}, {}) + search k={} | {} queries | | {:.3} + {:.3} | {:.0} queries/s | |",
            m.label(),
            m.search.index,
            m.search.device,
            m.search.k,
            m.search.queries,
            m.search.build_seconds,
            m.search.search_seconds,
            m.search.queries_per_second
        );
    }
    let _ = writeln!(s, "\n## Machine\n");
    let mi = &info.machine;
    let _ = writeln!(
        s,
        "- CPU: {} ({} logical cores)\n- OS: {}\n- Device: {}",
        mi.cpu, mi.cores, mi.os, mi.device
    );
    let _ = writeln!(
        s,
        "- Data: `{}` ({:?} layout)",
        set.layout
            .references
            .parent()
            .unwrap_or(&set.layout.references)
            .display(),
        set.layout.kind
    );
    let _ = writeln!(s, "- Command: `{}`", info.command);
    let _ = writeln!(s, "- Total wall time: {:.1} s", info.wall_seconds);
    let _ = writeln!(
        s,
        "\n\"cached\": the embeddings came from the on-disk cache of an earlier run, so no extraction throughput was measured."
    );
    s
}

/// Images per second over both extractions (references and queries) of a model.
pub(super) fn combined_rate(
    m: &ModelResult,
    f: impl Fn(&crate::benchmark::ExtractTiming) -> Option<f64>,
) -> Option<f64> {
    let parts = [&m.extract_references, &m.extract_queries];
    let mut images = 0usize;
    let mut seconds = 0.0;
    for t in parts {
        if let Some(r) = f(t) {
            images += t.computed;
            seconds += t.computed as f64 / r;
        }
    }
    (images > 0 && seconds > 0.0).then(|| images as f64 / seconds)
}
