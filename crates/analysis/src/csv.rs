//! metrics.csv reading and writing through polars.

use crate::atomic::atomic_write;
use crate::error::{AnalysisError, Result};
use crate::record::Record;
use polars::prelude::*;
use std::io::Cursor;
use std::path::Path;

/// Column order of metrics.csv; a contract with scripts outside the project.
pub const METRICS_COLUMNS: [&str; 10] =
    ["experiment", "learner", "seed", "bits", "stage", "trained", "query", "database", "metric", "value"];

/// metrics.csv via a polars DataFrame + CsvWriter, columns exactly `experiment,learner,seed,bits,stage,trained,query,database,metric,value`, written atomically.
///
/// `trained` is empty for stage 0. Floats use polars' shortest round-trip
/// formatting, so `read_metrics_csv` gives back bit-identical values, and the
/// same records always give a byte-identical file.
pub fn write_metrics_csv(records: &[Record], path: &Path) -> Result<()> {
    let polars_err = |source| AnalysisError::Polars { path: path.to_path_buf(), source };
    let strs = |f: fn(&Record) -> &str| records.iter().map(f).collect::<Vec<&str>>();
    let u64s = |f: fn(&Record) -> u64| records.iter().map(f).collect::<Vec<u64>>();
    let columns = vec![
        Column::new("experiment".into(), strs(|r| &r.experiment)),
        Column::new("learner".into(), strs(|r| &r.learner)),
        Column::new("seed".into(), u64s(|r| r.seed)),
        Column::new("bits".into(), u64s(|r| r.bits as u64)),
        Column::new("stage".into(), u64s(|r| r.stage as u64)),
        Column::new(
            "trained".into(),
            records.iter().map(|r| r.trained.as_deref()).collect::<Vec<Option<&str>>>(),
        ),
        Column::new("query".into(), strs(|r| &r.query)),
        Column::new("database".into(), strs(|r| &r.database)),
        Column::new("metric".into(), strs(|r| &r.metric)),
        Column::new("value".into(), records.iter().map(|r| r.value).collect::<Vec<f64>>()),
    ];
    let mut df = DataFrame::new(records.len(), columns).map_err(polars_err)?;
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf).include_header(true).finish(&mut df).map_err(polars_err)?;
    atomic_write(path, &buf)
}

/// Read metrics.csv written by [`write_metrics_csv`] (or by hand) back into records.
///
/// All ten columns must be present (extra columns are ignored); an empty
/// `trained` cell reads as `None`. Errors name the path, the column and the row.
pub fn read_metrics_csv(path: &Path) -> Result<Vec<Record>> {
    let bytes = std::fs::read(path).map_err(|source| AnalysisError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let polars_err = |source| AnalysisError::Polars { path: path.to_path_buf(), source };
    // Read every column as text and parse in Rust: exact control over types and
    // error messages that name the column and row.
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(false)
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
        .map_err(polars_err)?;
    let schema_err = |column: &str, row: Option<usize>, message: String| AnalysisError::Schema {
        path: path.to_path_buf(),
        column: column.to_string(),
        row,
        message,
    };
    let mut cols = Vec::with_capacity(METRICS_COLUMNS.len());
    for name in METRICS_COLUMNS {
        let col = df.column(name).map_err(|_| {
            schema_err(
                name,
                None,
                format!(
                    "missing column (found: {})",
                    df.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
                ),
            )
        })?;
        let ca = col.str().map_err(|e| schema_err(name, None, e.to_string()))?;
        cols.push(ca.iter().collect::<Vec<Option<&str>>>());
    }
    let text = |c: usize, row: usize| -> Result<String> {
        match cols[c][row] {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(schema_err(METRICS_COLUMNS[c], Some(row + 1), "empty cell".into())),
        }
    };
    let optional = |c: usize, row: usize| -> Option<String> {
        cols[c][row].filter(|s| !s.is_empty()).map(str::to_string)
    };
    let parse = |c: usize, row: usize| -> Result<f64> {
        let s = text(c, row)?;
        s.trim()
            .parse::<f64>()
            .map_err(|e| schema_err(METRICS_COLUMNS[c], Some(row + 1), format!("`{s}`: {e}")))
    };
    let int = |c: usize, row: usize| -> Result<u64> {
        let s = text(c, row)?;
        s.trim()
            .parse::<u64>()
            .map_err(|e| schema_err(METRICS_COLUMNS[c], Some(row + 1), format!("`{s}`: {e}")))
    };
    let size = |c: usize, row: usize| -> Result<usize> {
        usize::try_from(int(c, row)?)
            .map_err(|e| schema_err(METRICS_COLUMNS[c], Some(row + 1), e.to_string()))
    };
    let mut out = Vec::with_capacity(df.height());
    for row in 0..df.height() {
        out.push(Record {
            experiment: text(0, row)?,
            learner: text(1, row)?,
            seed: int(2, row)?,
            bits: size(3, row)?,
            stage: size(4, row)?,
            trained: optional(5, row),
            query: text(6, row)?,
            database: text(7, row)?,
            metric: text(8, row)?,
            value: parse(9, row)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        let values = [0.1 + 0.2, 1.0 / 3.0, 5e-324, 1e-300, 0.0, -0.0, 1.0, 123456.789e10, f64::MAX, 0.7342];
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Record {
                experiment: "wiki, \"quoted\"".into(),
                learner: "meta".into(),
                seed: u64::MAX - i as u64,
                bits: 64,
                stage: i % 3,
                trained: (i % 3 != 0).then(|| "text".to_string()),
                query: "image".into(),
                database: "text".into(),
                metric: "map".into(),
                value: v,
            })
            .collect()
    }

    #[test]
    fn round_trips_exactly_and_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        let recs = records();
        write_metrics_csv(&recs, &a).unwrap();
        write_metrics_csv(&recs, &b).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        assert_eq!(bytes, std::fs::read(&b).unwrap());
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("experiment,learner,seed,bits,stage,trained,query,database,metric,value\n"));
        // Stage 0 has an empty `trained` cell.
        assert!(text.lines().nth(1).unwrap().contains(",0,,image,text,map,"), "{text}");
        let back = read_metrics_csv(&a).unwrap();
        assert_eq!(back.len(), recs.len());
        for (x, y) in recs.iter().zip(&back) {
            assert_eq!(x.value.to_bits(), y.value.to_bits(), "{} vs {}", x.value, y.value);
            assert_eq!(x, y);
        }
    }

    #[test]
    fn empty_and_nan() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        write_metrics_csv(&[], &p).unwrap();
        assert_eq!(read_metrics_csv(&p).unwrap(), vec![]);
        let mut r = records();
        r.truncate(1);
        r[0].value = f64::NAN;
        write_metrics_csv(&r, &p).unwrap();
        assert!(read_metrics_csv(&p).unwrap()[0].value.is_nan());
    }

    #[test]
    fn schema_errors_name_path_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.csv");
        std::fs::write(&p, "experiment,learner,seed,bits,stage,trained,query,metric,value\n").unwrap();
        let e = read_metrics_csv(&p).unwrap_err().to_string();
        assert!(e.contains("bad.csv") && e.contains("`database`"), "{e}");
        std::fs::write(
            &p,
            "experiment,learner,seed,bits,stage,trained,query,database,metric,value\ne,l,1,64,x,,a,b,map,0.5\n",
        )
        .unwrap();
        let e = read_metrics_csv(&p).unwrap_err().to_string();
        assert!(e.contains("`stage`") && e.contains("row 1"), "{e}");
        let missing = dir.path().join("nope.csv");
        let e = read_metrics_csv(&missing).unwrap_err().to_string();
        assert!(e.contains("nope.csv"), "{e}");
    }
}
