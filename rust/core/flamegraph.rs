//! Flame graphs from folded stacks, drawn by the `inferno` crate.
//!
//! inferno is the FlameGraph suite (Brendan Gregg's Perl scripts) ported to Rust: its SVGs are
//! FlameGraph's interactive ones (search, click to zoom, details on hover), which users already
//! read, and it needs no Perl and no other process. It is CDDL-1.0 licensed, as FlameGraph is;
//! bpfkit uses it unmodified as a library (see the README's licence note).

use std::str::FromStr;

use inferno::flamegraph::{self, color::Palette, Direction};

use crate::core::error::{Error, Result};

/// How to draw a flame graph (FlameGraph's options of the same names).
#[derive(Debug, Clone)]
pub struct FlameOptions {
    pub title: String,
    pub subtitle: Option<String>,
    /// What the counts are ("samples", "us").
    pub count_name: String,
    /// A palette name: "hot", "mem", "io", "wakeup", "java", "red", ...
    pub colors: String,
    /// An icicle graph: roots at the top.
    pub inverted: bool,
    /// Merge stacks from the leaf (a "reverse" or caller graph).
    pub reverse: bool,
    /// Width in pixels.
    pub width: usize,
    /// Frames narrower than this many pixels are left out.
    pub min_width: f64,
}

impl Default for FlameOptions {
    fn default() -> Self {
        FlameOptions {
            title: "Flame Graph".into(),
            subtitle: None,
            count_name: "samples".into(),
            colors: "hot".into(),
            inverted: false,
            reverse: false,
            width: 1200,
            min_width: 0.1,
        }
    }
}

/// The SVG of `folded` (one `frame;frame;... COUNT` line per stack, or `... BEFORE AFTER` for a
/// differential graph, as [`diff_folded`] writes). An empty profile gives FlameGraph's "no stack
/// counts found" picture, not an error.
pub fn svg(folded: &str, opts: &FlameOptions) -> Result<String> {
    let mut o = flamegraph::Options::default();
    o.title = opts.title.clone();
    o.subtitle = opts.subtitle.clone();
    o.count_name = opts.count_name.clone();
    o.colors = Palette::from_str(&opts.colors).map_err(|e| Error::Value(format!("colors={:?}: {e}", opts.colors)))?;
    o.direction = if opts.inverted { Direction::Inverted } else { Direction::Straight };
    o.reverse_stack_order = opts.reverse;
    o.image_width = Some(opts.width);
    o.min_width = opts.min_width;
    // The same profile draws the same picture (colours from the names, not a random generator).
    o.hash = true;
    o.deterministic = true;
    let mut out = Vec::new();
    let lines: Vec<&str> = folded.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return empty_svg(opts);
    }
    flamegraph::from_lines(&mut o, lines, &mut out).map_err(|e| Error::Value(format!("drawing the flame graph: {e}")))?;
    String::from_utf8(out).map_err(|e| Error::Internal(format!("inferno wrote non-UTF-8 SVG: {e}")))
}

/// inferno refuses an empty profile; a tool that saw no stacks still writes a picture saying so.
fn empty_svg(opts: &FlameOptions) -> Result<String> {
    let title = opts.title.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    Ok(format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"{w}\" height=\"60\" \
         xmlns=\"http://www.w3.org/2000/svg\"><text x=\"{x}\" y=\"24\" text-anchor=\"middle\" font-size=\"17\">{title}</text>\
         <text x=\"{x}\" y=\"48\" text-anchor=\"middle\" font-size=\"12\">ERROR: No valid input provided to flamegraph</text></svg>\n",
        w = opts.width,
        x = opts.width / 2
    ))
}

/// The folded lines of a differential flame graph: every stack of `before` and `after` with both
/// counts (`frames BEFORE AFTER`), the first profile scaled to the second's total so that a
/// busier second run does not paint everything red (FlameGraph's `difffolded.pl -n`).
pub fn diff_folded(before: &str, after: &str) -> Result<String> {
    let opts = inferno::differential::Options { normalize: true, ..Default::default() };
    let mut out = Vec::new();
    inferno::differential::from_readers(opts, before.as_bytes(), after.as_bytes(), &mut out)
        .map_err(|e| Error::Value(format!("merging the folded stacks: {e}")))?;
    String::from_utf8(out).map_err(|e| Error::Internal(format!("inferno wrote non-UTF-8 text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_frame_with_its_count() {
        let s = svg("main;work;spin 90\nmain;idle 10\n", &FlameOptions { title: "CPU".into(), ..Default::default() }).unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"));
        assert!(s.contains("spin (90 samples, 90.00%)"), "{}", &s[..s.len().min(3000)]);
        assert!(s.contains("idle (10 samples, 10.00%)"));
        assert!(s.contains(">CPU<"));
        assert_eq!(s, svg("main;work;spin 90\nmain;idle 10\n", &FlameOptions { title: "CPU".into(), ..Default::default() }).unwrap());
    }

    #[test]
    fn empty_profiles_and_bad_palettes() {
        assert!(svg("", &FlameOptions::default()).unwrap().contains("No valid input"));
        assert!(svg("a 1\n", &FlameOptions { colors: "plaid".into(), ..Default::default() }).is_err());
    }

    #[test]
    fn differential_lines_have_both_counts() {
        let d = diff_folded("a;b 10\na;c 10\n", "a;b 30\n").unwrap();
        assert!(d.lines().any(|l| l.starts_with("a;b ") && l.ends_with(" 30")), "{d}");
        assert!(d.lines().any(|l| l.starts_with("a;c ") && l.ends_with(" 0")), "{d}");
    }
}
