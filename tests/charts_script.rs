//! `benches/charts.py` on a small fixture in criterion's own format: the
//! charts it draws are well-formed SVG (parsed as XML by Python's
//! `xml.etree`) with the series, labels and numbers the fixture implies.
//!
//! Needs `python3` (3.11, standard library only) on PATH.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Value};

/// A fresh directory under the system's temporary directory.
fn temp_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "iam-guard-charts-{tag}-{}-{nanos}",
        std::process::id()
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// One case as criterion writes it: `<group with / as _>/<function>[/<value>]/new/`
/// holding `benchmark.json` and `estimates.json` (times in ns). `slope`
/// set or not, as criterion's linear and flat sampling modes do.
fn case(root: &Path, group: &str, function: &str, value: Option<&str>, ns: f64, slope: bool) {
    let mut dir = root.join(group.replace('/', "_")).join(function);
    if let Some(v) = value {
        dir = dir.join(v);
    }
    let dir = dir.join("new");
    fs::create_dir_all(&dir).unwrap();
    let full_id = match value {
        Some(v) => format!("{group}/{function}/{v}"),
        None => format!("{group}/{function}"),
    };
    fs::write(
        dir.join("benchmark.json"),
        json!({
            "group_id": group,
            "function_id": function,
            "value_str": value,
            "throughput": null,
            "full_id": full_id,
            "directory_name": full_id.replace("scaling/", "scaling_"),
            "title": full_id,
        })
        .to_string(),
    )
    .unwrap();
    let estimate = |point: f64| {
        json!({
            "confidence_interval": {
                "confidence_level": 0.95,
                "lower_bound": point * 0.95,
                "upper_bound": point * 1.05,
            },
            "point_estimate": point,
            "standard_error": point * 0.02,
        })
    };
    // The mean is off by 10 % where a slope exists: the script must take
    // the slope, as criterion's own report does.
    let (mean, slope_v) = if slope {
        (estimate(ns * 1.1), estimate(ns))
    } else {
        (estimate(ns), Value::Null)
    };
    fs::write(
        dir.join("estimates.json"),
        json!({
            "mean": mean,
            "median": estimate(ns),
            "median_abs_dev": estimate(ns * 0.01),
            "slope": slope_v,
            "std_dev": estimate(ns * 0.05),
        })
        .to_string(),
    )
    .unwrap();
}

/// The fixture: a few points per chart, with overheads easy to check.
fn fixture(root: &Path) -> PathBuf {
    let crit = root.join("criterion");
    let rs = "scaling/response_size";
    for (bytes, admin_us, teacher_us) in [
        ("1086", 3.0, 2.5),
        ("67111", 60.0, 50.0),
        ("1073193", 1200.0, 1000.0),
    ] {
        case(&crit, rs, "bare", Some(bytes), 1000.0, true);
        case(
            &crit,
            rs,
            "admin",
            Some(bytes),
            1000.0 + admin_us * 1000.0,
            true,
        );
        case(
            &crit,
            rs,
            "teacher",
            Some(bytes),
            1000.0 + teacher_us * 1000.0,
            true,
        );
    }
    let roles = "scaling/roles";
    case(&crit, roles, "bare", None, 1500.0, false);
    for (n, guarded_us, compile_us) in [("1", 3.0, 0.3), ("10", 3.5, 3.0), ("100", 6.0, 30.0)] {
        case(
            &crit,
            roles,
            "guarded",
            Some(n),
            1500.0 + guarded_us * 1000.0,
            false,
        );
        case(&crit, roles, "compile", Some(n), compile_us * 1000.0, false);
    }
    let hits = "scaling/token_hit_ratio";
    case(&crit, hits, "bare", None, 1000.0, true);
    for (pct, us) in [("100", 4.0), ("50", 18.0), ("0", 32.0)] {
        case(
            &crit,
            hits,
            "guarded",
            Some(pct),
            1000.0 + us * 1000.0,
            true,
        );
    }
    // Measured ratios beside criterion's files, as benches/scaling.rs writes them.
    fs::write(
        crit.join("scaling_token_hit_ratio/hit_ratios.json"),
        json!({"100": 100.0, "50": 49.5, "0": 0.0}).to_string(),
    )
    .unwrap();

    let http = root.join("http_sweep.txt");
    fs::write(
        &http,
        "# benches/http_load.sh sweep: wrk, 3 rounds x 3s per route, 2 CPUs, 2026-01-02T00:00:00Z\n\
         # connections route req/s p50_us p99_us\n\
         1 bare 10000 90 200\n1 admin 8000 110 250\n1 teacher 8200 108 240\n\
         1 bare 12000 80 190\n1 admin 9000 100 240\n1 teacher 9000 101 230\n\
         1 bare 2000 400 5000\n1 admin 8500 105 245\n1 teacher 8600 104 235\n\
         32 bare 40000 700 2000\n32 admin 34000 900 2500\n32 teacher 35000 880 2400\n\
         256 bare 38000 6000 9000\n256 admin 31000 7000 9900\n256 teacher 32000 6900 9800\n",
    )
    .unwrap();
    http
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/charts.py")
}

/// Each SVG in `out`, parsed by Python's XML parser: its texts and, per
/// series, its label and points.
fn parse(out: &Path) -> Value {
    let probe = r#"
import json, sys, pathlib
import xml.etree.ElementTree as ET
NS = "{http://www.w3.org/2000/svg}"
charts = {}
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.svg")):
    root = ET.parse(f).getroot()
    assert root.tag == NS + "svg", root.tag
    texts = ["".join(t.itertext()) for t in root.iter(NS + "text")]
    series = {}
    for g in root.iter(NS + "g"):
        if g.get("class") == "series":
            pts = [[float(c.get("data-x")), float(c.get("data-y"))] for c in g.iter(NS + "circle")]
            lines = len(list(g.iter(NS + "polyline")))
            series[g.get("data-series")] = {"label": g.get("data-label"), "points": pts, "lines": lines}
    charts[f.stem] = {"chart": root.get("data-chart"), "texts": texts, "series": series,
                      "width": root.get("width"), "viewBox": root.get("viewBox")}
print(json.dumps(charts))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(probe)
        .arg(out)
        .output()
        .expect("python3 on PATH");
    assert!(
        output.status.success(),
        "the SVG files parse as XML: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn run_script(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3 on PATH")
}

fn points(chart: &Value, series: &str) -> Vec<(f64, f64)> {
    chart["series"][series]["points"]
        .as_array()
        .unwrap_or_else(|| panic!("series {series} in {}", chart["chart"]))
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

fn assert_points(got: &[(f64, f64)], want: &[(f64, f64)]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for ((gx, gy), (wx, wy)) in got.iter().zip(want) {
        assert!((gx - wx).abs() < 1e-6 * wx.abs().max(1.0), "x {gx} vs {wx}");
        assert!(
            (gy - wy).abs() < 1e-3 * wy.abs().max(1.0),
            "y {gy} vs {wy} at {gx}"
        );
    }
}

fn has_text(chart: &Value, needle: &str) -> bool {
    chart["texts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t.as_str().unwrap().contains(needle))
}

#[test]
fn draws_the_four_charts_from_criterion_output_and_the_http_sweep() {
    let root = temp_dir("all");
    let http = fixture(&root);
    let out = root.join("charts");
    let output = run_script(&[
        "--criterion".as_ref(),
        root.join("criterion").as_os_str(),
        "--http".as_ref(),
        http.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--date".as_ref(),
        "2026-01-02".as_ref(),
        "--commit".as_ref(),
        "abc1234".as_ref(),
    ]);
    assert!(
        output.status.success(),
        "charts.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for name in [
        "response_size",
        "roles",
        "token_hit_ratio",
        "http_concurrency",
    ] {
        assert!(out.join(format!("{name}.svg")).is_file(), "{name}.svg");
    }
    let charts = parse(&out);

    // Overheads are guarded − bare, in µs, from the slope estimates.
    let rs = &charts["response_size"];
    assert_eq!(rs["chart"], "response_size");
    assert_points(
        &points(rs, "admin"),
        &[(1086.0, 3.0), (67111.0, 60.0), (1073193.0, 1200.0)],
    );
    assert_points(
        &points(rs, "teacher"),
        &[(1086.0, 2.5), (67111.0, 50.0), (1073193.0, 1000.0)],
    );
    assert_points(
        &points(rs, "bare"),
        &[(1086.0, 1.0), (67111.0, 1.0), (1073193.0, 1.0)],
    );
    assert_eq!(rs["series"]["admin"]["lines"], 1);
    assert!(rs["series"]["teacher"]["label"]
        .as_str()
        .unwrap()
        .contains("teacher"));
    assert!(has_text(rs, "Guard overhead vs response size"));
    // A log axis in bytes, and the units on the y axis.
    assert!(has_text(rs, "1 KiB") && has_text(rs, "1 MiB"));
    assert!(has_text(rs, "µs"));
    assert!(has_text(rs, "2026-01-02") && has_text(rs, "abc1234"));

    // Flat sampling (no slope): the mean.
    let roles = &charts["roles"];
    assert_points(
        &points(roles, "guarded"),
        &[(1.0, 3.0), (10.0, 3.5), (100.0, 6.0)],
    );
    assert_points(
        &points(roles, "compile"),
        &[(1.0, 0.3), (10.0, 3.0), (100.0, 30.0)],
    );
    assert!(has_text(roles, "roles in the token"));
    assert!(has_text(roles, "bare router 1.5 µs"));

    // The measured hit ratio, not the nominal one, places the point.
    let hits = &charts["token_hit_ratio"];
    assert_points(
        &points(hits, "guarded"),
        &[(0.0, 32.0), (49.5, 18.0), (100.0, 4.0)],
    );
    assert!(has_text(hits, "100 %") && has_text(hits, "0 %"));
    assert!(has_text(hits, "+4 µs") && has_text(hits, "+32 µs"));

    // Requests/s: the median of the rounds (one bare round at a single
    // connection is an outlier), per connection count.
    let http = &charts["http_concurrency"];
    assert_points(
        &points(http, "bare"),
        &[(1.0, 10000.0), (32.0, 40000.0), (256.0, 38000.0)],
    );
    assert_points(
        &points(http, "admin"),
        &[(1.0, 8500.0), (32.0, 34000.0), (256.0, 31000.0)],
    );
    assert_eq!(points(http, "teacher").len(), 3);
    assert!(has_text(http, "requests per second"));
    assert!(has_text(http, "256"));
    // 8,500 / 10,000 and 34,000 / 40,000: 85 %; 31,000 / 38,000: 82 %.
    assert!(has_text(http, "1 conn. 85 %") && has_text(http, "32 conn. 85 %"));
    assert!(has_text(http, "256 conn. 82 %"));

    // The figures also go to stdout as a Markdown table.
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("| response_size | admin | 1,073,193 B | 1,200 µs |"));

    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn skips_a_chart_without_input_and_fails_with_none() {
    let root = temp_dir("partial");
    fixture(&root);
    let out = root.join("charts");
    // No sweep file: the three criterion charts, no HTTP one.
    let output = run_script(&[
        "--criterion".as_ref(),
        root.join("criterion").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(output.status.success());
    assert!(out.join("roles.svg").is_file());
    assert!(!out.join("http_concurrency.svg").exists());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no data for http_concurrency"));

    // Nothing to draw at all is an error, not an empty success.
    let empty = root.join("empty");
    fs::create_dir_all(&empty).unwrap();
    let output = run_script(&[
        "--criterion".as_ref(),
        empty.as_os_str(),
        "--out".as_ref(),
        root.join("none").as_os_str(),
    ]);
    assert!(!output.status.success());
    fs::remove_dir_all(&root).unwrap();
}
