//! Where records go: one buffered file per dataset, CSV (header = field names) or JSON
//! Lines (one object per record, absent fields omitted).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Format, SynthError};

const BUFFER: usize = 256 * 1024;

/// A dataset's output file.
#[derive(Debug)]
pub(crate) struct Sink {
    path: PathBuf,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    /// With each field name already encoded as `"name":`.
    Jsonl(BufWriter<File>, Vec<Vec<u8>>),
}

impl Sink {
    /// Creates (or truncates) `path` and writes the CSV header.
    pub(crate) fn create(path: &Path, format: Format, fields: &[&str]) -> Result<Sink, SynthError> {
        let file = File::create(path).map_err(|e| SynthError::io(path, e))?;
        let buf = BufWriter::with_capacity(BUFFER, file);
        let inner = match format {
            Format::Csv => {
                let mut w = csv::WriterBuilder::new().from_writer(buf);
                w.write_record(fields)
                    .map_err(|e| SynthError::csv(path, e))?;
                Inner::Csv(Box::new(w))
            }
            Format::Jsonl => {
                let mut names = Vec::with_capacity(fields.len());
                for f in fields {
                    let mut enc = serde_json::to_vec(f).map_err(|e| SynthError::json(path, e))?;
                    enc.push(b':');
                    names.push(enc);
                }
                Inner::Jsonl(buf, names)
            }
        };
        Ok(Sink {
            path: path.to_path_buf(),
            inner,
        })
    }

    /// Writes one record; an empty cell is an absent value.
    pub(crate) fn write(&mut self, cells: &[String]) -> Result<(), SynthError> {
        match &mut self.inner {
            Inner::Csv(w) => w
                .write_record(cells)
                .map_err(|e| SynthError::csv(&self.path, e)),
            Inner::Jsonl(w, names) => {
                let path = &self.path;
                let io = |e| SynthError::io(path, e);
                w.write_all(b"{").map_err(io)?;
                let mut first = true;
                for (name, cell) in names.iter().zip(cells) {
                    if cell.is_empty() {
                        continue;
                    }
                    if !first {
                        w.write_all(b",").map_err(io)?;
                    }
                    first = false;
                    w.write_all(name).map_err(io)?;
                    serde_json::to_writer(&mut *w, cell.as_str())
                        .map_err(|e| SynthError::json(path, e))?;
                }
                w.write_all(b"}\n").map_err(io)
            }
        }
    }

    /// Flushes everything to disk.
    pub(crate) fn finish(self) -> Result<(), SynthError> {
        let path = self.path;
        let mut buf = match self.inner {
            Inner::Csv(w) => w
                .into_inner()
                .map_err(|e| SynthError::io(&path, e.into_error()))?,
            Inner::Jsonl(w, _) => w,
        };
        buf.flush().map_err(|e| SynthError::io(&path, e))
    }
}
