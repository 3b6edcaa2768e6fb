//! Iteration data (`run --data rows.csv|rows.json`, as Newman's `-d`): one run of the flow per
//! row, the row's columns as variables.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// One row: column name to value.
pub type Row = BTreeMap<String, Value>;

/// Reads a data file: CSV with a header row (RFC 4180 quoting), or a JSON array of objects.
/// Errors name the file and, for CSV, the line.
pub fn load_rows(path: &Path) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the data file {}: {e}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('[');
    let rows = if is_json {
        json_rows(text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        csv_rows(text).map_err(|e| format!("{}:{e}", path.display()))?
    };
    if rows.is_empty() {
        return Err(format!(
            "{}: no rows (a CSV file needs a header line and at least one row; a JSON file an array of objects)",
            path.display()
        ));
    }
    Ok(rows)
}

fn json_rows(text: &str) -> Result<Vec<Row>, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("{}:{}: {e}", e.line(), e.column()))?;
    let Value::Array(items) = v else {
        return Err("expected an array of objects, one per iteration".into());
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(m) => Ok(m.into_iter().collect()),
            other => Err(format!(
                "item {} is {}, not an object of column values",
                i + 1,
                crate::util::json_kind(&other)
            )),
        })
        .collect()
}

/// Parses CSV: a header line, then rows; `"…"` quotes a field (`""` is a quote inside one),
/// which may span lines.
pub fn csv_rows(text: &str) -> Result<Vec<Row>, String> {
    let records = csv_records(text)?;
    let mut it = records.into_iter();
    let Some((_, header)) = it.next() else {
        return Ok(vec![]);
    };
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
    if let Some(dup) = header
        .iter()
        .enumerate()
        .find(|(i, h)| header[..*i].contains(h))
        .map(|(_, h)| h)
    {
        return Err(format!("1: column `{dup}` appears twice in the header"));
    }
    let mut rows = Vec::new();
    for (line, fields) in it {
        if fields.len() == 1 && fields[0].is_empty() {
            continue;
        }
        if fields.len() != header.len() {
            return Err(format!(
                "{line}: {} fields, but the header names {} columns",
                fields.len(),
                header.len()
            ));
        }
        rows.push(
            header
                .iter()
                .cloned()
                .zip(fields.into_iter().map(Value::String))
                .collect(),
        );
    }
    Ok(rows)
}

/// Records with the line each starts on.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut start_line = 1;
    let mut quoted = false;
    let mut quote_line = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                quoted = true;
                quote_line = line;
            }
            ',' => fields.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                out.push((start_line, std::mem::take(&mut fields)));
                line += 1;
                start_line = line;
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err(format!("{quote_line}: a quoted field is never closed"));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        out.push((start_line, fields));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_errors() {
        let rows = csv_rows("name,note\r\nann,\"a, \"\"b\"\"\nc\"\nbob,plain\n\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["note"], Value::String("a, \"b\"\nc".into()));
        assert_eq!(rows[1]["name"], Value::String("bob".into()));
        assert_eq!(
            csv_rows("a,b\n1,2,3\n").unwrap_err(),
            "2: 3 fields, but the header names 2 columns"
        );
        assert!(
            csv_rows("a\n\"open\n")
                .unwrap_err()
                .starts_with("2: a quoted")
        );
        assert!(json_rows("[1]").unwrap_err().contains("item 1 is a number"));
    }
}
