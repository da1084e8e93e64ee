//! Turning text into records and records into text, for `produce` and `consume`.

mod input;
mod output;

pub use input::{
    parse_header, InputError, InputFormat, KeySource, KeySourceError, Line, LineParser, LineReader,
};
pub use output::{format_record, format_record_with, PrintFormat};
