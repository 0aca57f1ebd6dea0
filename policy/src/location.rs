//! Where in which file something went wrong: every error an officer sees names
//! `file:line:column` and says what was expected.

use std::fmt;
use std::ops::Range;

/// A position in a policy or catalogue file, 1-based, counted in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as it was handed to the parser.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (a Chinese character counts as one).
    pub column: usize,
}

impl Location {
    /// Locates byte offset `offset` of `text`.
    pub fn of(file: &str, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let mut line = 1;
        let mut column = 1;
        for (i, ch) in text.char_indices() {
            if i >= offset {
                break;
            }
            if ch == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Location {
            file: file.to_owned(),
            line,
            column,
        }
    }

    /// Locates the start of a span, or the file's start when there is none.
    pub fn of_span(file: &str, text: &str, span: Option<Range<usize>>) -> Location {
        Location::of(file, text, span.map(|s| s.start).unwrap_or(0))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem found in a file, with where it is and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct LocatedError {
    /// Where the problem is.
    pub location: Location,
    /// What was wrong and what to do, lower-case, user input in backticks.
    pub message: String,
}

/// Every problem found in a file: validation reports them all at once so an officer
/// fixes a file in one pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LocatedErrors(pub Vec<LocatedError>);

impl fmt::Display for LocatedErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects located errors against one file's text.
#[derive(Debug)]
pub(crate) struct Diagnostics<'t> {
    pub file: &'t str,
    pub text: &'t str,
    pub errors: Vec<LocatedError>,
}

impl<'t> Diagnostics<'t> {
    pub(crate) fn new(file: &'t str, text: &'t str) -> Self {
        Diagnostics {
            file,
            text,
            errors: Vec::new(),
        }
    }

    pub(crate) fn at(&self, span: Range<usize>) -> Location {
        Location::of(self.file, self.text, span.start)
    }

    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let location = self.at(span);
        self.errors.push(LocatedError {
            location,
            message: message.into(),
        });
    }

    pub(crate) fn from_toml(file: &str, text: &str, err: &toml::de::Error) -> LocatedErrors {
        LocatedErrors(vec![LocatedError {
            location: Location::of_span(file, text, err.span()),
            message: err.message().trim().to_owned(),
        }])
    }

    pub(crate) fn finish<T>(self, value: T) -> Result<T, LocatedErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(LocatedErrors(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_and_characters_not_bytes() {
        let text = "a = 1\n名 = \"x\"\n";
        let at = Location::of("f.toml", text, text.find('=').unwrap());
        assert_eq!(at.to_string(), "f.toml:1:3");
        let second = text.rfind('=').unwrap();
        assert_eq!(
            Location::of("f.toml", text, second).to_string(),
            "f.toml:2:3"
        );
    }
}
