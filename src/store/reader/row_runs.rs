//! Which rows of a metrics file are whose, in its footer: the writer groups
//! rows by container (ids ascending, times ascending within one), so a list
//! of (id, row count) says it all, and a reader skips the `container_id`
//! column (a string per row: a sixth of a cold 24 h chart's CPU).
//!
//! Key `fgm.rows.v1`, value: one line per container in row order,
//! `<rows> <id>` (decimal count, one space, the id to the end of the line).
//! A file whose ids cannot be written so (an id holding a newline) goes
//! without; a reader then reads the column, as for files written before.

/// Footer key of the runs (a new layout gets a new key).
pub const KEY: &str = "fgm.rows.v1";

/// The footer value for `runs` ((id, rows) in row order); `None` when an id
/// cannot be written in a line.
pub fn encode(runs: &[(&str, usize)]) -> Option<String> {
    let mut out = String::with_capacity(runs.len() * 20);
    for (id, rows) in runs {
        if id.contains(['\n', '\r']) || id.is_empty() {
            return None;
        }
        out.push_str(&rows.to_string());
        out.push(' ');
        out.push_str(id);
        out.push('\n');
    }
    Some(out)
}

/// The runs of a footer value with each container's row range, if they are
/// well formed, ids strictly ascending, and cover exactly `rows` rows;
/// `None` otherwise (the reader then reads the column).
pub fn decode(value: &str, rows: usize) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let mut out: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut start = 0usize;
    for line in value.lines() {
        let (count, id) = line.split_once(' ')?;
        let count: usize = count.parse().ok()?;
        if id.is_empty() || count == 0 || out.last().is_some_and(|(last, _)| last.as_str() >= id) {
            return None;
        }
        let end = start.checked_add(count)?;
        out.push((id.to_string(), start..end));
        start = end;
    }
    (start == rows).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_to_row_ranges() {
        let value = encode(&[("0a1b2c3d4e5f", 90), ("local:web.service", 3)]).expect("encodes");
        assert_eq!(value, "90 0a1b2c3d4e5f\n3 local:web.service\n");
        assert_eq!(
            decode(&value, 93),
            Some(vec![
                ("0a1b2c3d4e5f".to_string(), 0..90),
                ("local:web.service".to_string(), 90..93)
            ])
        );
    }

    #[test]
    fn anything_but_an_exact_cover_is_refused() {
        let value = encode(&[("a", 2), ("b", 2)]).expect("encodes");
        assert_eq!(decode(&value, 5), None, "rows the runs do not cover");
        assert_eq!(decode(&value, 3), None, "fewer rows than the runs");
        assert_eq!(decode("2 b\n2 a\n", 4), None, "ids out of order");
        assert_eq!(decode("2 a\n2 a\n", 4), None, "an id twice");
        assert_eq!(decode("x a\n", 1), None, "not a count");
        assert_eq!(decode("0 a\n", 0), None, "an empty run");
        assert_eq!(decode("", 0), Some(Vec::new()));
        assert_eq!(encode(&[("a\nb", 1)]), None, "an id that is not one line");
    }
}
